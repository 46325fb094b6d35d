-- Archived events of these facilities.
SELECT count() FROM events_archive WHERE facility_id IN %(f)s
