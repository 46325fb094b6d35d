-- Each patient's states at every facility, from the timeline rows {timeline} of the patients
-- {in_scope}, as one row per patient (migration 0010, table patient_states): a pure function
-- of the patient's timeline, recomputed whole whenever an event of theirs arrives, so a late
-- or resent event needs no special case; `version` (the patient's timeline rows) makes the
-- newest row win.
--
-- A patient's state at a facility is "not active" ('') or "active in programme P" (P = the
-- latest enrolment anywhere, 'unknown' without one). Per (patient, facility) the last
-- membership change wins, a leave beating a join at the same instant ('2' > '0' in the text
-- key), then the larger event_id. `steps` has one entry per instant of a membership change at
-- the facility or of an enrolment anywhere (once the patient has any membership there):
-- `known` (a membership change there at or before it), `programme` (latest enrolment so far),
-- `state` after it and `previous` before it, the cause and, for a discharge, its outcome
-- (looked up in the archive). `take_home` has the take-home state after each instant of an
-- approval (+1), a revocation or a discharge (−1; either beats an approval at one instant).
-- The monthly report (monthly_patients.sql) reads the standing at any instant and the moves
-- between two instants from these.
WITH
    timeline AS (
        SELECT
            *,
            leftPad(toString(toUnixTimestamp64Milli(occurred_at)), 15, '0') AS instant,
            toString(event_id) AS event_key
        FROM ({timeline})
        WHERE {in_scope}
    ),
    memberships AS (
        SELECT
            patient_ref,
            facility_id,
            occurred_at AS at,
            argMax(
                tuple(membership, toString(event_type), event_id),
                concat(toString(1 - membership), event_key)
            ) AS winner
        FROM timeline
        WHERE membership != 0
        GROUP BY patient_ref, facility_id, at
    ),
    enrolments AS (
        SELECT patient_ref, occurred_at AS at, argMax(toString(programme), event_key) AS programme
        FROM timeline
        WHERE event_type = 'patient.enrolled'
        GROUP BY patient_ref, at
    ),
    grid AS (
        SELECT
            patient_ref,
            facility_id,
            at,
            any(joined) AS joined,
            any(cause) AS cause,
            any(cause_id) AS cause_id,
            any(programme) AS programme
        FROM (
            SELECT
                patient_ref,
                facility_id,
                at,
                toNullable(toUInt8(winner.1 = 1)) AS joined,
                toNullable(winner.2) AS cause,
                toNullable(winner.3) AS cause_id,
                CAST(NULL, 'Nullable(String)') AS programme
            FROM memberships
            UNION ALL
            SELECT e.patient_ref, p.facility_id, e.at, NULL, NULL, NULL, toNullable(e.programme)
            FROM enrolments AS e
            INNER JOIN (SELECT DISTINCT patient_ref, facility_id FROM memberships) AS p
                ON e.patient_ref = p.patient_ref
        )
        GROUP BY patient_ref, facility_id, at
    ),
    states AS (
        SELECT
            patient_ref,
            facility_id,
            at,
            ifNull(cause, '') AS cause,
            cause_id,
            toUInt8(count(joined) OVER w > 0) AS known,
            ifNull(anyLast(programme) OVER w, '') AS programme,
            if(ifNull(anyLast(joined) OVER w, 0) = 1, if(programme = '', 'unknown', programme), '')
                AS state
        FROM grid
        WINDOW w AS (PARTITION BY patient_ref, facility_id ORDER BY at ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ),
    changes AS (
        SELECT
            *,
            lagInFrame(state, 1, '') OVER (
                PARTITION BY patient_ref, facility_id ORDER BY at
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
            ) AS previous
        FROM states
    ),
    outcomes AS (
        SELECT event_id, toString(outcome) AS outcome
        FROM events_archive
        WHERE event_type = 'patient.discharged'
            AND (facility_id, occurred_at) IN (
                SELECT facility_id, at FROM memberships WHERE winner.2 = 'patient.discharged'
            )
    ),
    steps AS (
        SELECT
            c.patient_ref AS patient_ref,
            groupArray(
                tuple(
                    c.facility_id, c.at, c.known, c.programme, c.state, c.previous, c.cause,
                    o.outcome
                )
            ) AS steps
        FROM changes AS c
        LEFT JOIN outcomes AS o ON o.event_id = c.cause_id
        GROUP BY patient_ref
    ),
    take_home AS (
        SELECT patient_ref, arraySort(groupArray(tuple(at, value))) AS take_home
        FROM (
            SELECT
                patient_ref,
                occurred_at AS at,
                argMax(take_home, concat(toString(1 - take_home), event_key)) AS value
            FROM timeline
            WHERE take_home != 0
            GROUP BY patient_ref, at
        )
        GROUP BY patient_ref
    ),
    versions AS (
        SELECT patient_ref, count() AS version FROM timeline GROUP BY patient_ref
    )
SELECT
    v.patient_ref AS patient_ref,
    v.version AS version,
    arraySort(x -> (x.1, x.2), s.steps) AS steps,
    t.take_home AS take_home
FROM versions AS v
LEFT JOIN steps AS s ON s.patient_ref = v.patient_ref
LEFT JOIN take_home AS t ON t.patient_ref = v.patient_ref
SETTINGS join_use_nulls = 0
