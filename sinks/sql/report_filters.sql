-- A report's scope (sinks/reports.py Scope) and the parts of its day rows, joined by
-- all_of() as a question needs them.

-- name: facilities
facility_id IN %(scope_facilities)s

-- name: date_from
local_date >= %(scope_from)s

-- name: date_to
local_date <= %(scope_to)s

-- name: item
item = %(scope_item)s

-- name: before_t_day
-- The complete days before T's day.
local_date < %(t_day)s

-- name: through_t_day
-- Every day up to T's (T taken as the end of its day).
local_date <= %(t_day)s

-- name: t_day_until_t
-- T's own day, up to T.
local_date = %(t_day)s AND occurred_at <= %(t)s

-- name: until_t
occurred_at <= %(t)s
