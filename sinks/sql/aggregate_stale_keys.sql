-- Facility-days where an aggregate table ({table}) counts other events than the archive.
SELECT a.facility_id, a.local_date
FROM (
    SELECT facility_id, local_date, count() AS events FROM events_archive
    WHERE event_type IN %(types)s GROUP BY facility_id, local_date
) AS a
LEFT JOIN (
    SELECT facility_id, local_date, sum(events) AS events
    FROM {table} FINAL GROUP BY facility_id, local_date
) AS g ON a.facility_id = g.facility_id AND a.local_date = g.local_date
WHERE a.events != g.events
