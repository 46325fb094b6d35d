-- Archived events of an aggregate's types (compared with aggregate_counted_events.sql).
SELECT count() FROM events_archive WHERE event_type IN %(types)s
