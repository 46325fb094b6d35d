-- The earliest occurred_at the archive holds (no row when it is empty).
SELECT min(earliest_occurred_at), count() FROM archive_bounds
