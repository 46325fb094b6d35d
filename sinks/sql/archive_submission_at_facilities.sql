-- Under which submission (source, seq) each event_id was archived, looked up by facility
-- first: the archive's sort key, so cheap.
SELECT toString(event_id), source, seq
FROM events_archive
WHERE facility_id IN %(facilities)s AND event_id IN %(ids)s
