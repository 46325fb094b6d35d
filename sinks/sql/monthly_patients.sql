-- The monthly report's patients (CONTRACT §6) per facility and programme (sinks/monthly.py rolls
-- them up to every unit above), from each patient's states {states} (patient_states.sql: per facility, the state after every
-- instant that can change it, and the take-home state).
--
-- Standing: a patient's (known, programme, state) at a facility at the period's start is its
-- last step before the start, at the cut-off its last step at or before it. Rows: every
-- (facility, programme) report_patients lists at the start or at the cut-off, i.e. the
-- programme of every patient known there then; `take_home_end` counts the active ones whose
-- last take-home step up to the cut-off is an approval.
--
-- Moves: each step whose state differs from the one before it, from the year's first local
-- midnight to the cut-off:
--   not active → P: `enrolled` (by an enrolment) or `transferred_in` (by a transfer);
--   P → not active: `transferred_out` or `discharged` by the discharge's outcome;
--   P → Q (a new enrolment while active): `enrolled` in Q, and `discharged` from P under the
--   outcome 'programme_changed'.
-- The moves chain the state at the start to the state at the cut-off, so active_start +
-- enrolled + transferred_in − transferred_out − Σ discharged = active_end holds on every row
-- by construction. `enrolled_year` and `completed_year` count the same moves from the year's
-- start (seed 001's Phụ lục 02 counts people treated in the year).
--
-- One chain, states → steps → pairs → parts → rows: a CTE named twice is computed twice, and
-- reading the states and unfolding their steps is most of the cost, so each (patient,
-- facility) pair carries its moves to the one unfolding of everything it counts in.
WITH
    states AS ({states}),
    steps AS (
        SELECT
            patient_ref,
            step.1 AS facility_id,
            step.2 AS at,
            step.3 AS known,
            if(step.4 = '', 'unknown', step.4) AS programme,
            step.5 AS state,
            step.6 AS previous,
            arrayLast(x -> x.1 <= %(cut)s, take_home).2 = 1 AS take_home_at_end,
            -- The step's moves, as (programme, figure, outcome, in the period).
            if(
                previous = state OR at < %(year_start)s,
                [],
                arrayMap(
                    move -> tuple(
                        move.1,
                        move.2,
                        if(move.2 = 'discharged', if(move.3 = '', step.8, move.3), ''),
                        toUInt8(at >= %(start)s)
                    ),
                    multiIf(
                        previous = '',
                            [tuple(state, if(step.7 = 'patient.enrolled', 'enrolled', 'transferred_in'), '')],
                        state = '',
                            [tuple(previous, if(step.7 = 'patient.transferred', 'transferred_out', 'discharged'), '')],
                        [tuple(state, 'enrolled', ''), tuple(previous, 'discharged', 'programme_changed')]
                    )
                )
            ) AS moves
        FROM states
        ARRAY JOIN steps AS step
        WHERE step.2 <= %(cut)s
    ),
    pairs AS (
        SELECT
            facility_id,
            -- One argMax per column: over a tuple it would be several times slower.
            argMaxIf(known, at, at < %(start)s) AS known_start,
            argMaxIf(programme, at, at < %(start)s) AS programme_start,
            argMaxIf(state, at, at < %(start)s) != '' AS active_start,
            argMax(known, at) AS known_end,
            argMax(programme, at) AS programme_end,
            argMax(state, at) != '' AS active_end,
            any(take_home_at_end) AS take_home_at_end,
            groupArrayArray(moves) AS moves
        FROM steps
        GROUP BY patient_ref, facility_id
    ),
    -- What each pair counts in: its standing at the start and at the cut-off (a programme
    -- is listed where someone is known, active or not: 'known' rows), then its moves.
    parts AS (
        SELECT facility_id, part.1 AS programme, part.2 AS figure, part.3 AS outcome, part.4 AS in_period
        FROM pairs
        ARRAY JOIN arrayConcat(
            if(known_start = 1,
                [tuple(programme_start, if(active_start, 'active_start', 'known'), '', toUInt8(0))], []),
            if(known_end = 1,
                [tuple(programme_end, if(active_end, 'active_end', 'known'), '', toUInt8(0))], []),
            if(known_end = 1 AND active_end AND take_home_at_end,
                [tuple(programme_end, 'take_home_end', '', toUInt8(0))], []),
            moves
        ) AS part
    )
SELECT
    facility_id,
    programme,
    countIf(figure = 'active_start') AS active_start,
    countIf(figure = 'enrolled' AND in_period) AS enrolled,
    countIf(figure = 'transferred_in' AND in_period) AS transferred_in,
    countIf(figure = 'transferred_out' AND in_period) AS transferred_out,
    sumMap(map(outcome, toUInt64(figure = 'discharged' AND in_period))) AS discharged,
    countIf(figure = 'active_end') AS active_end,
    countIf(figure = 'take_home_end') AS take_home_end,
    countIf(figure = 'enrolled') AS enrolled_year,
    countIf(figure = 'discharged' AND outcome = 'completed') AS completed_year
FROM parts
GROUP BY facility_id, programme
