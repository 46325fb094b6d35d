-- Which archive rows an aggregate's file (dispensing_daily.sql, …, patient_timeline.sql)
-- recomputes: its {where}.

-- name: keys
-- Exactly these facility-days, shaped so that ClickHouse can prune partitions (local_date)
-- and use the primary key (facility_id) first.
facility_id IN %(facilities)s AND local_date IN %(days)s
AND (facility_id, local_date) IN %(keys)s

-- name: timeline_at
-- Lifecycle events by id, at their facilities (the archive's sort key first).
event_id IN %(ids)s AND facility_id IN %(facilities)s

-- name: timeline
-- Lifecycle events by id.
event_id IN %(ids)s

-- name: everything
-- Every row (a rebuild from the whole archive).
1

-- name: patients
-- These patients' timeline rows (their patient_states rows are recomputed).
patient_ref IN %(patients)s
