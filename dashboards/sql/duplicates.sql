-- Submissions per source decided within the time range: accepted, rejected, duplicates.
SELECT
    source,
    countIf(outcome = 'accepted') AS accepted,
    countIf(outcome = 'rejected') AS rejected,
    countIf(outcome = 'duplicate') AS duplicates,
    round(100 * duplicates / count(), 2) AS duplicate_pct
FROM submissions FINAL
WHERE $__timeFilter(decided_at)
GROUP BY source
ORDER BY duplicates DESC, source
