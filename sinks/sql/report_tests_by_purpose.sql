-- Tests per facility, month and purpose (`report tests --by purpose`), from the archive's test
-- events at or before T matching {where}; only substances with a positive. The daily
-- aggregate has no purpose, and tests are few beside doses, so the archive answers directly.
SELECT
    facility_id,
    toStartOfMonth(local_date) AS month,
    toString(purpose) AS purpose,
    count() AS tests,
    mapFilter(
        (substance, n) -> n > 0,
        sumMap(mapApply((substance, result) -> (substance, toUInt64(result = 'positive')), results))
    ) AS positive
FROM events_archive
WHERE event_type = 'test.performed' AND occurred_at <= %(t)s AND ({where})
GROUP BY facility_id, month, purpose
ORDER BY facility_id, month, purpose
