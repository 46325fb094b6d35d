-- Each event archived after an instant (the judge's sweep, a minute at a time).
SELECT toString(event_id), received_at, event_type, facility_id, item, patient_ref, occurred_at
FROM events_archive
WHERE received_at > %(since)s
