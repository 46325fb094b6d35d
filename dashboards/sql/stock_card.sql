-- The stock card: per facility, item and local day, what came in, was adjusted, was used
-- (units: dose milligrams ÷ mg per unit, one kit per test) and the physical count if any.
SELECT
    toDateTime(d.local_date, 'Asia/Ho_Chi_Minh') AS day,
    d.facility_id AS facility_id,
    d.item AS item,
    i.unit AS unit,
    round(d.received, 1) AS received,
    round(d.adjusted, 1) AS adjusted,
    round(if(ifNull(i.mg_per_unit, 0) > 0, d.dose_mg_days / i.mg_per_unit, 0) + d.tests, 1) AS used,
    if(d.counted = 1, round(d.count_on_hand, 1), NULL) AS counted_on_hand
FROM stock_daily AS d FINAL
LEFT JOIN {{items}} AS i ON i.item = d.item
WHERE $__dateFilter(d.local_date) AND d.facility_id IN ({{facility_scope}})
ORDER BY d.local_date DESC, d.facility_id, d.item
