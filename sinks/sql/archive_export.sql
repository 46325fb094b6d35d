-- Write the archived events matching {where} ({columns}: every archive column) as Avro,
-- one file per facility and local month. The directory name replaces what is not
-- [A-Za-z0-9_-] by '_' (sinks/archive.py facility_dir follows the same rule).
INSERT INTO FUNCTION file(%(path)s, 'Avro')
PARTITION BY concat(
    replaceRegexpAll(facility_id, '[^A-Za-z0-9_-]', '_'), '/',
    substring(toString(local_date), 1, 7)
)
SELECT {columns} FROM events_archive
WHERE {where}
ORDER BY facility_id, occurred_at, event_id
SETTINGS output_format_avro_string_column_pattern = '.*', output_format_avro_codec = 'deflate'
