-- How many events the archive holds.
SELECT count() FROM events_archive
