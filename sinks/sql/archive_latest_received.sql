-- When the archive last received an event (no row when it is empty).
SELECT max(received_at), count() FROM events_archive
