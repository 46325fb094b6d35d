-- The monthly report's patient flows (CONTRACT §6) per unit and programme, from timeline rows
-- {timeline} that occurred at or before the report's cut-off, rolled up over %(rollup)s
-- (pairs facility → each unit its figures count in, itself included).
--
-- A patient's state at a facility is "not active" or "active in programme P" (P = the latest
-- enrolment anywhere, 'unknown' without one), as report_patients.sql reads it at any instant:
-- per (patient, facility) the last membership change wins, a leave beating a join at the
-- same instant, then the larger event_id. Each instant that changes the state is one move:
--   not active → P: `enrolled` (by an enrolment) or `transferred_in` (by a transfer);
--   P → not active: `transferred_out` or `discharged` by the discharge's outcome;
--   P → Q (a new enrolment while active): `enrolled` in Q, and `discharged` from P under the
--   outcome 'programme_changed'.
-- So active_start + enrolled + transferred_in − transferred_out − Σ discharged = active_end
-- holds on every row by construction. `enrolled_year` and `completed_year` count the same
-- moves from the year's first local midnight (seed 001's Phụ lục 02 counts people treated
-- in the year). Rows: every (facility, programme) report_patients lists at the period's
-- start or at its end, and every one with a move in the year.
WITH
    timeline AS ({timeline}),
    memberships AS (
        SELECT
            patient_ref,
            facility_id,
            occurred_at AS at,
            argMax(
                tuple(membership, toString(event_type), event_id),
                tuple(-membership, toString(event_id))
            ) AS winner
        FROM timeline
        WHERE membership != 0
        GROUP BY patient_ref, facility_id, at
    ),
    enrolments AS (
        SELECT patient_ref, occurred_at AS at, argMax(toString(programme), toString(event_id)) AS programme
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
            ifNull(anyLast(programme) OVER w, 'unknown') AS programme_now,
            if(ifNull(anyLast(joined) OVER w, 0) = 1, programme_now, '') AS state
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
            AND local_date >= %(year_first_day)s AND local_date <= %(cut_day)s
            AND occurred_at >= %(year_start)s AND occurred_at <= %(cut)s
    ),
    moves AS (
        SELECT
            c.facility_id AS facility_id,
            c.at AS at,
            move.1 AS programme,
            move.2 AS figure,
            if(move.2 = 'discharged', if(move.3 = '', o.outcome, move.3), '') AS outcome
        FROM changes AS c
        ARRAY JOIN multiIf(
            c.previous = '',
                [tuple(c.state, if(c.cause = 'patient.enrolled', 'enrolled', 'transferred_in'), '')],
            c.state = '',
                [tuple(c.previous, if(c.cause = 'patient.transferred', 'transferred_out', 'discharged'), '')],
            [tuple(c.state, 'enrolled', ''), tuple(c.previous, 'discharged', 'programme_changed')]
        ) AS move
        LEFT JOIN outcomes AS o ON o.event_id = c.cause_id
        WHERE c.previous != c.state AND c.at >= %(year_start)s
    ),
    pairs AS (
        SELECT
            patient_ref,
            facility_id,
            countIf(at < %(start)s AND cause != '') > 0 AS known_at_start,
            argMaxIf(state, at, at < %(start)s) AS start_state,
            argMaxIf(programme_now, at, at < %(start)s) AS start_programme,
            argMax(state, at) AS end_state,
            argMax(programme_now, at) AS end_programme
        FROM states
        GROUP BY patient_ref, facility_id
    ),
    take_home AS (
        SELECT
            patient_ref,
            argMax(take_home, tuple(occurred_at, -take_home, toString(event_id))) = 1 AS approved
        FROM timeline
        WHERE take_home != 0
        GROUP BY patient_ref
    ),
    figures AS (
        SELECT
            facility_id,
            start_programme AS programme,
            toUInt64(start_state != '') AS active_start,
            toUInt64(0) AS active_end,
            toUInt64(0) AS take_home_end,
            '' AS figure,
            '' AS outcome,
            toDateTime64(0, 3, 'UTC') AS at
        FROM pairs
        WHERE known_at_start
        UNION ALL
        SELECT
            p.facility_id,
            p.end_programme,
            0,
            toUInt64(p.end_state != ''),
            toUInt64(p.end_state != '' AND t.approved),
            '',
            '',
            toDateTime64(0, 3, 'UTC')
        FROM pairs AS p
        LEFT JOIN take_home AS t ON p.patient_ref = t.patient_ref
        UNION ALL
        SELECT facility_id, programme, 0, 0, 0, figure, outcome, at
        FROM moves
    ),
    rollup AS ({rollup})
SELECT
    r.unit_id AS unit_id,
    f.programme AS programme,
    sum(f.active_start) AS active_start,
    countIf(f.figure = 'enrolled' AND f.at >= %(start)s) AS enrolled,
    countIf(f.figure = 'transferred_in' AND f.at >= %(start)s) AS transferred_in,
    countIf(f.figure = 'transferred_out' AND f.at >= %(start)s) AS transferred_out,
    sumMapIf(map(f.outcome, toUInt64(1)), f.figure = 'discharged' AND f.at >= %(start)s) AS discharged,
    sum(f.active_end) AS active_end,
    sum(f.take_home_end) AS take_home_end,
    countIf(f.figure = 'enrolled') AS enrolled_year,
    countIf(f.figure = 'discharged' AND f.outcome = 'completed') AS completed_year
FROM figures AS f
INNER JOIN rollup AS r ON f.facility_id = r.facility_id
GROUP BY unit_id, programme
