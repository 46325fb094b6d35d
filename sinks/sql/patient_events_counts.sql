-- Archived patient events, and distinct events in the patient index.
SELECT
    (SELECT count() FROM events_archive WHERE patient_ref != ''),
    (SELECT uniqExact(event_id) FROM patient_events)
