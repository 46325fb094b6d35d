-- Conditions the alert judge's reads combine (sinks/alert_store.py), each bound to its own
-- parameters; all_of() joins the ones a question needs.

-- name: patients
patient_ref IN %(patients)s

-- name: until
occurred_at <= %(until)s

-- name: since
occurred_at >= %(since)s

-- name: event_ids
event_id IN %(ids)s

-- name: unindexed
-- Archived patient events the patient index lacks (a crash between the two writes).
event_id NOT IN (SELECT event_id FROM patient_events)

-- name: anonymous_tests
-- Positive tests with no patient_ref: they belong to no patient's history.
event_type = 'test.performed' AND patient_ref = '' AND has(mapValues(results), 'positive')

-- name: stock_events
event_type IN %(types)s AND item != ''

-- name: stock_keys
(facility_id, item) IN %(keys)s AND facility_id IN %(facilities)s

-- name: kinds
kind IN %(kinds)s

-- name: alert_ids
alert_id IN %(ids)s

-- name: subjects
subject IN %(subjects)s

-- name: open
status = 'open'
