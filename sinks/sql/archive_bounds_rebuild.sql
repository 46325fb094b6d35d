-- The archive's bounds from the whole archive (nothing when it is empty).
INSERT INTO archive_bounds SELECT 0, max(occurred_at), min(occurred_at)
FROM events_archive
HAVING count() > 0
