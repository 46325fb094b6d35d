-- Archived patient events, and distinct events in the patient index. Copies of one event share
-- the whole sort key, so FINAL counts each once while streaming: uniqExact(event_id) held a
-- set of every id in memory (~2 GB on a national year at every worker start).
SELECT
    (SELECT count() FROM events_archive WHERE patient_ref != ''),
    (SELECT count() FROM patient_events FINAL)
