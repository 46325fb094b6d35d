-- The monthly report's patients (CONTRACT §6), part 2: the moves of the year up to the
-- cut-off, per unit and programme, rolled up over {rollup} (part 1, the standing at the
-- period's start and at the cut-off, is monthly_patients.sql).
--
-- With a patient's state at a facility read as in part 1 ("not active" or "active in
-- programme P"), each instant that changes it is one move:
--   not active → P: `enrolled` (by an enrolment) or `transferred_in` (by a transfer);
--   P → not active: `transferred_out` or `discharged` by the discharge's outcome;
--   P → Q (a new enrolment while active): `enrolled` in Q, and `discharged` from P under the
--   outcome 'programme_changed'.
-- The moves chain the state at the period's start to the state at the cut-off, so
-- active_start + enrolled + transferred_in − transferred_out − Σ discharged = active_end holds
-- on every row by construction. `enrolled_year` and `completed_year` count the same moves
-- from the year's first local midnight (seed 001's Phụ lục 02 counts people treated in the
-- year). Only patients with a membership change or an enrolment since then can have moved,
-- so the state machine (a grid of instants and window functions) runs over them alone: their
-- timelines are {keyed_timeline} (sinks/monthly.py binds them as a literal set, so that each
-- read below touches only their rows of the timeline, which is ordered by patient_ref).
WITH
    timeline AS ({keyed_timeline}),
    -- The moves of the patients who may have moved.
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
            if(
                ifNull(anyLast(joined) OVER w, 0) = 1,
                ifNull(anyLast(programme) OVER w, 'unknown'),
                ''
            ) AS state
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
            AND (facility_id, occurred_at) IN (
                SELECT facility_id, at FROM memberships
                WHERE winner.2 = 'patient.discharged' AND at >= %(year_start)s
            )
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
    rollup AS ({rollup})
SELECT
    r.unit_id AS unit_id,
    m.programme AS programme,
    countIf(m.figure = 'enrolled' AND m.at >= %(start)s) AS enrolled,
    countIf(m.figure = 'transferred_in' AND m.at >= %(start)s) AS transferred_in,
    countIf(m.figure = 'transferred_out' AND m.at >= %(start)s) AS transferred_out,
    sumMapIf(map(m.outcome, toUInt64(1)), m.figure = 'discharged' AND m.at >= %(start)s)
        AS discharged,
    countIf(m.figure = 'enrolled') AS enrolled_year,
    countIf(m.figure = 'discharged' AND m.outcome = 'completed') AS completed_year
FROM moves AS m
INNER JOIN rollup AS r ON m.facility_id = r.facility_id
GROUP BY unit_id, programme
SETTINGS join_use_nulls = 0
