-- What no judge may have judged yet: events archived after an instant, grouped so that a
-- whole archive stays a short list.
SELECT event_type, facility_id, item, patient_ref, min(occurred_at), max(received_at)
FROM events_archive
WHERE received_at > %(since)s
GROUP BY event_type, facility_id, item, patient_ref
