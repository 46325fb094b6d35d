-- Tests per facility and month, from day rows {days}; only substances with a positive.
SELECT
    facility_id,
    toStartOfMonth(local_date) AS month,
    sum(tests) AS tests,
    mapFilter((substance, n) -> n > 0, sumMap(positive)) AS positive
FROM ({days})
GROUP BY facility_id, month
ORDER BY facility_id, month
