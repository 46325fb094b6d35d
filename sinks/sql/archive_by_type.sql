-- Archived events per event type.
SELECT toString(event_type), count() FROM events_archive GROUP BY 1 ORDER BY 1
