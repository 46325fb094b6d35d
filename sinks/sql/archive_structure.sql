-- The archive's columns with their ClickHouse types (file()'s structure argument).
SELECT name, type
FROM system.columns
WHERE database = currentDatabase() AND table = 'events_archive'
