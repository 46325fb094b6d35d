-- The monthly report's stock ledger (CONTRACT §6) per facility and item (sinks/monthly.py rolls
-- them up), from day rows {days} (every stock day up to the report's cut-off). Opening is on hand
-- at the period's start, closing on hand at the cut-off, both as report_stock.sql computes it
-- ({opening} over the days before the period, {closing} over all of them); received, adjusted
-- and used sum the period's days (a dose uses dose_mg × days / mg_per_unit, a test one kit).
-- A count resets on hand, so the month's count difference is what the movements leave
-- unexplained: closing − opening − received − adjusted + used, i.e. the sum over the period's
-- counts of (counted − computed just before) — computed from these figures in sinks/monthly.py.
WITH
    days AS ({days}),
    opening AS ({opening}),
    closing AS ({closing}),
    flows AS (
        SELECT
            facility_id,
            item,
            sum(received) AS received,
            sum(adjusted) AS adjusted,
            sum(if(mg_per_unit > 0, dose_mg_days / mg_per_unit, 0.) + tests) AS used
        FROM (
            SELECT *, transform(toString(item), %(items)s, %(mg_per_unit)s, 0.) AS mg_per_unit
            FROM days
            WHERE local_date >= %(first_day)s
        )
        GROUP BY facility_id, item
    )
SELECT
    c.facility_id AS facility_id,
    c.item AS item,
    o.on_hand AS opening,
    f.received AS received,
    f.adjusted AS adjusted,
    f.used AS used,
    c.on_hand AS closing
FROM closing AS c
LEFT JOIN opening AS o ON o.facility_id = c.facility_id AND o.item = c.item
LEFT JOIN flows AS f ON f.facility_id = c.facility_id AND f.item = c.item
SETTINGS join_use_nulls = 0
