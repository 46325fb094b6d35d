-- How each aggregate table of a database ({db}) is read as one row per key.

-- name: final
-- A ReplacingMergeTree ({table}): FINAL collapses its versions.
SELECT * FROM {db}.{table} FINAL

-- name: archive_bounds
SELECT key, max(latest_occurred_at) AS latest_occurred_at,
       min(earliest_occurred_at) AS earliest_occurred_at
FROM {db}.archive_bounds
GROUP BY key

-- name: count
SELECT count() FROM ({rows})

-- name: columns
SELECT name, type FROM system.columns WHERE database = %(db)s AND table = %(t)s ORDER BY position
