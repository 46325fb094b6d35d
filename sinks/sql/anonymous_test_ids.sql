-- The positive tests of no patient_ref ({anonymous}: alert_filters.anonymous_tests)
-- archived after an instant.
SELECT toString(event_id) FROM events_archive WHERE {anonymous} AND received_at > %(since)s
