-- Patients active at T, and enrolled and discharged within the dashboard's time range.
SELECT
    toInt64((SELECT sum(active) FROM ({{patients}}) WHERE facility_id IN ({{facility_scope}})))
        AS active,
    toInt64(countIf(event_type = 'patient.enrolled')) AS enrolled,
    toInt64(countIf(event_type = 'patient.discharged')) AS discharged
FROM events_archive
WHERE event_type IN ('patient.enrolled', 'patient.discharged') AND $__timeFilter(occurred_at)
    AND facility_id IN ({{facility_scope}})
