-- Enrolments per local day and programme in the time range (long format: one series per programme).
SELECT
    toDateTime(local_date, 'Asia/Ho_Chi_Minh') AS time,
    toString(programme) AS programme,
    count() AS enrolments
FROM events_archive
WHERE event_type = 'patient.enrolled' AND $__timeFilter(occurred_at)
    AND facility_id IN ({{facility_scope}})
GROUP BY local_date, programme
ORDER BY local_date, programme
