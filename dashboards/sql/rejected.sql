-- Rejected submissions by reason and source (decided within the time range). Reasons are
-- cut to their first clause so that one rule's failures group together.
SELECT
    source,
    splitByString(': ', reason)[1] AS reason,
    count() AS rejected
FROM submissions FINAL
WHERE outcome = 'rejected' AND $__timeFilter(decided_at)
GROUP BY source, reason
ORDER BY rejected DESC, source, reason
