-- Which archived events an export takes (sinks/archive.py Filters); all_of() joins the
-- ones given.

-- name: as_of
occurred_at <= %(as_of)s

-- name: facilities
facility_id IN %(facilities)s

-- name: date_from
local_date >= %(date_from)s

-- name: date_to
local_date <= %(date_to)s

-- name: not_archived
-- An import's rows whose event_id the archive does not hold yet, one of each.
WHERE event_id NOT IN (SELECT event_id FROM events_archive) LIMIT 1 BY event_id
