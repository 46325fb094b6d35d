-- Lifecycle events archived but absent from the patient timeline.
SELECT toString(event_id), facility_id
FROM events_archive
WHERE event_type IN %(types)s AND event_id NOT IN (SELECT event_id FROM patient_timeline)
