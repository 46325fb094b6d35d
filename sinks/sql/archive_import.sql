-- Add every event file's rows to the archive ({columns}: every archive column;
-- {not_archived}: archive_filters.not_archived, or nothing into an empty archive).
INSERT INTO events_archive ({columns})
SELECT {columns} FROM file(%(source)s, 'Avro', %(structure)s) {not_archived}
