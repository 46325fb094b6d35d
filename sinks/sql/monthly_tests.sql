-- The monthly report's tests (CONTRACT §6) per unit and purpose, from the period's tests in
-- the archive up to the cut-off ({before_cut}), rolled up over {rollup}; only substances
-- with a positive.
WITH
    performed AS (
        SELECT
            facility_id,
            toString(purpose) AS purpose,
            count() AS tests,
            sumMap(
                mapApply((substance, result) -> (substance, toUInt64(result = 'positive')), results)
            ) AS positive
        FROM events_archive
        WHERE event_type = 'test.performed'
            AND local_date >= %(first_day)s AND local_date <= %(cut_day)s
            AND {before_cut} AND ({where})
        GROUP BY facility_id, purpose
    ),
    rollup AS ({rollup})
SELECT
    r.unit_id AS unit_id,
    t.purpose AS purpose,
    sum(t.tests) AS tests,
    mapFilter((substance, n) -> n > 0, sumMap(t.positive)) AS positive
FROM performed AS t
INNER JOIN rollup AS r ON t.facility_id = r.facility_id
GROUP BY unit_id, purpose
