-- The patients with an event of these types in [since, until) (the archive is partitioned
-- by local month, so the local days bound the months read).
SELECT DISTINCT patient_ref
FROM events_archive
WHERE patient_ref != ''
    AND event_type IN %(types)s
    AND local_date >= %(first)s AND local_date <= %(last)s
    AND occurred_at >= %(since)s AND occurred_at < %(until)s
