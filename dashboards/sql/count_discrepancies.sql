-- Physical counts against the computed on hand just before them: the on hand at the end of
-- the previous day (last count plus movements) plus the day's movements before the count.
-- Only a count with no earlier movement of the item (its first day, nothing before the count)
-- opens the ledger unchecked (CONTRACT §4).
WITH
    valued AS (
        SELECT
            d.facility_id AS facility_id,
            d.item AS item,
            d.local_date AS local_date,
            d.counted AS counted,
            d.count_on_hand AS count_on_hand,
            ifNull(i.mg_per_unit, 0) AS mg_per_unit,
            d.received + d.adjusted
                - if(mg_per_unit > 0, d.dose_mg_days / mg_per_unit, 0) - d.tests AS net,
            d.after_received_adjusted
                - if(mg_per_unit > 0, d.after_dose_mg_days / mg_per_unit, 0) - d.after_tests
                AS net_after_count
        FROM stock_daily AS d FINAL
        LEFT JOIN {{items}} AS i ON i.item = d.item
        WHERE d.local_date <= {{t_day}} AND d.facility_id IN ({{facility_scope}})
    ),
    grouped AS (
        SELECT *, sum(counted) OVER (PARTITION BY facility_id, item ORDER BY local_date) AS count_group
        FROM valued
    ),
    ends AS (
        SELECT
            *,
            sum(if(counted = 1, count_on_hand + net_after_count, net)) OVER (
                PARTITION BY facility_id, item, count_group ORDER BY local_date
            ) AS on_hand_end
        FROM grouped
    ),
    checked AS (
        SELECT
            *,
            lagInFrame(on_hand_end, 1, 0.) OVER (
                PARTITION BY facility_id, item ORDER BY local_date
                ROWS BETWEEN 1 PRECEDING AND CURRENT ROW
            ) AS previous_end,
            row_number() OVER (PARTITION BY facility_id, item ORDER BY local_date) AS day_number
        FROM ends
    )
SELECT
    toDateTime(local_date, 'Asia/Ho_Chi_Minh') AS day,
    facility_id,
    item,
    round(count_on_hand, 1) AS counted_on_hand,
    round(previous_end + net - net_after_count, 1) AS expected,
    round(counted_on_hand - expected, 1) AS difference,
    multiIf(
        abs(difference) > greatest({{count_tolerance_percent}} / 100 * abs(expected), {{count_tolerance_units}}) * 5, 'critical',
        abs(difference) > greatest({{count_tolerance_percent}} / 100 * abs(expected), {{count_tolerance_units}}), 'warning',
        'ok'
    ) AS status
FROM checked
WHERE counted = 1 AND (day_number > 1 OR abs(net - net_after_count) > 1e-9)
    AND $__dateFilter(local_date)
ORDER BY abs(difference) DESC, day DESC
LIMIT 200
