-- T when no --as-of is given: the latest occurred_at accepted so far.

-- name: aggregates
SELECT max(latest_occurred_at), count() FROM archive_bounds

-- name: archive
SELECT max(occurred_at), count() FROM events_archive

-- name: live_timeline
-- The patient timeline up to T, from the live table.
SELECT * FROM patient_timeline WHERE occurred_at <= %(t)s
