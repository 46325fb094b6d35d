-- Rejected submissions with their reason, oldest first, up to an as-of moment (a rejected
-- line may have no readable occurred_at: it counts from its arrival).
SELECT source, seq, event_id, event_type, facility_id, reason, raw, decided_at
FROM submissions FINAL
WHERE outcome = 'rejected'
    AND (%(as_of)s IS NULL OR coalesce(occurred_at, decided_at) <= %(as_of)s)
ORDER BY decided_at, source, seq
LIMIT %(limit)s
