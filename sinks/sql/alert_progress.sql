-- How far the judge has read the archive (no row: not at all).
SELECT max(received_at), count() FROM alert_progress
