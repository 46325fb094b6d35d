-- Submission names reused with other content (refused; the first stands), oldest first, up
-- to an as-of moment.
SELECT source, seq, event_id, event_type, facility_id, reason, raw, decided_at
FROM submission_conflicts FINAL
WHERE %(as_of)s IS NULL OR coalesce(occurred_at, decided_at) <= %(as_of)s
ORDER BY decided_at, source, seq
LIMIT %(limit)s
