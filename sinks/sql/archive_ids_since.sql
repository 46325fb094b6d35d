-- The event_ids archived (by any worker) since a moment, by arrival time.
SELECT toString(event_id) FROM events_archive WHERE received_at >= %(since)s
