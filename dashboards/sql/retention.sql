-- Retention: of the patients enrolled at a facility within the time range, how many are still
-- in treatment (active at any facility) at T.
WITH
    enrolled AS (
        SELECT DISTINCT facility_id, patient_ref
        FROM events_archive
        WHERE event_type = 'patient.enrolled' AND $__timeFilter(occurred_at)
            AND facility_id IN ({{facility_scope}})
    ),
    membership AS (
        SELECT
            patient_ref,
            facility_id,
            argMax(membership, tuple(occurred_at, -membership, toString(event_id))) = 1 AS active
        FROM patient_timeline
        WHERE membership != 0 AND patient_ref IN (SELECT patient_ref FROM enrolled)
        GROUP BY patient_ref, facility_id
    ),
    in_treatment AS (SELECT patient_ref, max(active) AS active FROM membership GROUP BY patient_ref)
SELECT
    e.facility_id AS facility_id,
    toInt64(count()) AS enrolled,
    toInt64(countIf(t.active = 1)) AS still_in_treatment,
    round(100 * still_in_treatment / enrolled, 1) AS retention_pct
FROM enrolled AS e
LEFT JOIN in_treatment AS t ON t.patient_ref = e.patient_ref
GROUP BY e.facility_id
ORDER BY retention_pct, facility_id
