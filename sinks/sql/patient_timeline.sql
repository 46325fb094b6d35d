-- Patient lifecycle events from the archive rows matching {where}, as changes of state: one
-- row per facility an event affects (a transfer leaves its facility and joins to_facility_id).
SELECT
    patient_ref,
    affected.1 AS facility_id,
    occurred_at,
    event_id,
    event_type,
    affected.2 AS membership,
    affected.3 AS take_home,
    programme,
    max_days
FROM (
    SELECT
        patient_ref, facility_id AS origin_id, to_facility_id, occurred_at, event_id,
        event_type, programme, max_days
    FROM events_archive
    WHERE event_type IN (
            'patient.enrolled', 'patient.transferred', 'patient.discharged',
            'patient.take_home_approved', 'patient.take_home_revoked'
        )
        AND ({where})
)
ARRAY JOIN multiIf(
    event_type = 'patient.enrolled', [tuple(origin_id, toInt8(1), toInt8(0))],
    event_type = 'patient.transferred',
        [tuple(origin_id, toInt8(-1), toInt8(0)), tuple(to_facility_id, toInt8(1), toInt8(0))],
    event_type = 'patient.discharged', [tuple(origin_id, toInt8(-1), toInt8(-1))],
    event_type = 'patient.take_home_approved', [tuple(origin_id, toInt8(0), toInt8(1))],
    [tuple(origin_id, toInt8(0), toInt8(-1))]
) AS affected
