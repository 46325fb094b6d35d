-- Active patients per facility and programme as of T (CONTRACT §3 "Active patient"), from
-- timeline rows {timeline} that occurred at or before T, for facilities matching {where}.
-- A facility a patient ever joined keeps its row (0 once all have left). On a tie in time a
-- leave beats a join, a revocation beats an approval; then the event_id decides.
WITH
    timeline AS ({timeline}),
    membership AS (
        SELECT
            patient_ref,
            facility_id,
            argMax(membership, tuple(occurred_at, -membership, toString(event_id))) = 1 AS active
        FROM timeline
        WHERE membership != 0
        GROUP BY patient_ref, facility_id
    ),
    programmes AS (
        SELECT patient_ref, argMax(programme, tuple(occurred_at, toString(event_id))) AS programme
        FROM timeline
        WHERE event_type = 'patient.enrolled'
        GROUP BY patient_ref
    ),
    take_home AS (
        SELECT
            patient_ref,
            argMax(take_home, tuple(occurred_at, -take_home, toString(event_id))) = 1 AS approved
        FROM timeline
        WHERE take_home != 0
        GROUP BY patient_ref
    )
SELECT
    m.facility_id AS facility_id,
    if(p.programme = '', 'unknown', toString(p.programme)) AS programme,
    countIf(m.active) AS active,
    countIf(m.active AND t.approved) AS take_home_approved
FROM membership AS m
LEFT JOIN programmes AS p ON m.patient_ref = p.patient_ref
LEFT JOIN take_home AS t ON m.patient_ref = t.patient_ref
WHERE {where}
GROUP BY facility_id, programme
ORDER BY facility_id, programme
