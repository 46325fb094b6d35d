-- The monthly report's patients (CONTRACT §6), part 1: who is active at the period's start
-- and at the cut-off, per unit and programme, rolled up over {rollup}. Part 2, the moves in
-- between, is monthly_patient_moves.sql; sinks/monthly.py puts the two side by side.
--
-- A patient's state at a facility is "not active" or "active in programme P" (P = the latest
-- enrolment anywhere, 'unknown' without one), as report_patients.sql reads it at any instant:
-- per (patient, facility) the last membership change wins, a leave beating a join at the
-- same instant ('2' > '0' in the text key), then the larger event_id; a take-home approval
-- is current when the last approval, revocation or discharge is an approval (a revocation or
-- a discharge beats an approval at one instant). Rows: every (facility, programme)
-- report_patients lists at the period's start or at the cut-off.
WITH
    timeline AS ({keyed_timeline}),
    -- Standing at the start and at the cut-off, for every (patient, facility) ever joined.
    standing AS (
        SELECT
            patient_ref,
            facility_id,
            countIf(occurred_at < %(start)s) > 0 AS known_at_start,
            argMaxIf(
                membership, concat(instant, toString(1 - membership), event_key),
                occurred_at < %(start)s
            ) = 1 AS active_at_start,
            argMax(membership, concat(instant, toString(1 - membership), event_key)) = 1
                AS active_at_end
        FROM timeline
        WHERE membership != 0
        GROUP BY patient_ref, facility_id
    ),
    -- Per patient: the programme at the start and at the cut-off (latest enrolment), and
    -- whether a take-home approval is current at the cut-off (a revocation or a discharge
    -- beats an approval at the same instant).
    patients AS (
        SELECT
            patient_ref,
            argMaxIf(
                toString(programme), concat(instant, event_key),
                event_type = 'patient.enrolled' AND occurred_at < %(start)s
            ) AS programme_at_start,
            argMaxIf(
                toString(programme), concat(instant, event_key),
                event_type = 'patient.enrolled'
            ) AS programme_at_end,
            argMaxIf(
                take_home, concat(instant, toString(1 - take_home), event_key), take_home != 0
            ) = 1 AS take_home_at_end
        FROM timeline
        WHERE event_type = 'patient.enrolled' OR take_home != 0
        GROUP BY patient_ref
    ),
    -- Everyone's standing, counted per facility and programme (at the start, at the end)
    -- before anything is unfolded: a few hundred rows instead of one per patient.
    standings AS (
        SELECT
            s.facility_id AS facility_id,
            if(p.programme_at_start = '', 'unknown', p.programme_at_start) AS programme_start,
            if(p.programme_at_end = '', 'unknown', p.programme_at_end) AS programme_end,
            countIf(s.known_at_start) AS known,
            countIf(s.active_at_start) AS at_start,
            countIf(s.active_at_end) AS at_end,
            countIf(s.active_at_end AND p.take_home_at_end) AS take_home_at_end
        FROM standing AS s
        LEFT JOIN patients AS p ON s.patient_ref = p.patient_ref
        GROUP BY facility_id, programme_start, programme_end
    ),
    figures AS (
        SELECT
            facility_id,
            side.1 AS programme,
            side.2 AS active_start,
            side.3 AS active_end,
            side.4 AS take_home_end
        FROM standings
        ARRAY JOIN arrayFilter(
            x -> x.5,
            [
                tuple(programme_start, at_start, toUInt64(0), toUInt64(0), known > 0),
                tuple(programme_end, toUInt64(0), at_end, take_home_at_end, true)
            ]
        ) AS side
    ),
    rollup AS ({rollup})
SELECT
    r.unit_id AS unit_id,
    f.programme AS programme,
    sum(f.active_start) AS active_start,
    sum(f.active_end) AS active_end,
    sum(f.take_home_end) AS take_home_end
FROM figures AS f
INNER JOIN rollup AS r ON f.facility_id = r.facility_id
GROUP BY unit_id, programme
SETTINGS join_use_nulls = 0
