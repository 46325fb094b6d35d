-- Supervision visits per visited facility since a local day.
SELECT facility_id, occurred_at
FROM events_archive
WHERE event_type = 'supervision.visited' AND local_date >= %(since)s
