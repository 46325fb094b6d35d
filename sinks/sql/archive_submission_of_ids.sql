-- Under which submission (source, seq) each event_id was archived, at any facility (an
-- event re-sent under another one, or a false positive of the duplicate filter): the
-- archive's bloom-filter index on event_id.
SELECT toString(event_id), source, seq FROM events_archive WHERE event_id IN %(ids)s
