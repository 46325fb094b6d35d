-- Archived rows and distinct event_ids (equal unless an event_id repeats).
SELECT count(), uniqExact(event_id) FROM events_archive
