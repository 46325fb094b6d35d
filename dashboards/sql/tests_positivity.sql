-- Tests performed per local day and positive results (a test may be positive for several
-- substances, so positive results are counted per substance, not per test).
SELECT
    toDateTime(local_date, 'Asia/Ho_Chi_Minh') AS time,
    sum(tests) AS tests,
    sum(arraySum(mapValues(positive))) AS positive_results
FROM tests_daily FINAL
WHERE $__dateFilter(local_date) AND facility_id IN ({{facility_scope}})
GROUP BY local_date
ORDER BY local_date
