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
            step.7 AS cause,
            step.8 AS outcome,
            arrayLast(x -> x.1 <= %(cut)s, take_home).2 = 1 AS take_home_at_end
        FROM states
        ARRAY JOIN steps AS step
        WHERE step.2 <= %(cut)s
    ),
    standing AS (
        SELECT
            patient_ref,
            facility_id,
            -- One argMax per column: over a tuple it would be several times slower.
            argMaxIf(known, at, at < %(start)s) AS known_start,
            argMaxIf(programme, at, at < %(start)s) AS programme_start,
            argMaxIf(state, at, at < %(start)s) != '' AS active_start,
            argMax(known, at) AS known_end,
            argMax(programme, at) AS programme_end,
            argMax(state, at) != '' AS active_end,
            any(take_home_at_end) AS take_home_at_end
        FROM steps
        GROUP BY patient_ref, facility_id
    ),
    -- Everyone's standing, counted per facility and programme (at the start, at the end)
    -- before anything is unfolded: a few hundred rows instead of one per patient.
    standings AS (
        SELECT
            facility_id,
            programme_start,
            programme_end,
            countIf(known_start = 1) AS n_known_start,
            countIf(active_start) AS n_start,
            countIf(known_end = 1) AS n_known_end,
            countIf(active_end) AS n_end,
            countIf(active_end AND take_home_at_end) AS n_take_home
        FROM standing
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
                tuple(programme_start, n_start, toUInt64(0), toUInt64(0), n_known_start > 0),
                tuple(programme_end, toUInt64(0), n_end, n_take_home, n_known_end > 0)
            ]
        ) AS side
    ),
    moves AS (
        SELECT
            facility_id,
            at,
            move.1 AS programme,
            move.2 AS figure,
            if(move.2 = 'discharged', if(move.3 = '', outcome, move.3), '') AS outcome
        FROM steps
        ARRAY JOIN multiIf(
            previous = '',
                [tuple(state, if(cause = 'patient.enrolled', 'enrolled', 'transferred_in'), '')],
            state = '',
                [tuple(previous, if(cause = 'patient.transferred', 'transferred_out', 'discharged'), '')],
            [tuple(state, 'enrolled', ''), tuple(previous, 'discharged', 'programme_changed')]
        ) AS move
        WHERE previous != state AND at >= %(year_start)s
    ),
    flows AS (
        SELECT
            facility_id,
            programme,
            active_start,
            active_end,
            take_home_end,
            toUInt64(0) AS enrolled,
            toUInt64(0) AS transferred_in,
            toUInt64(0) AS transferred_out,
            map('', toUInt64(0)) AS discharged,
            toUInt64(0) AS enrolled_year,
            toUInt64(0) AS completed_year
        FROM figures
        UNION ALL
        SELECT
            facility_id,
            programme,
            0, 0, 0,
            toUInt64(figure = 'enrolled' AND at >= %(start)s),
            toUInt64(figure = 'transferred_in' AND at >= %(start)s),
            toUInt64(figure = 'transferred_out' AND at >= %(start)s),
            map(outcome, toUInt64(figure = 'discharged' AND at >= %(start)s)),
            toUInt64(figure = 'enrolled'),
            toUInt64(figure = 'discharged' AND outcome = 'completed')
        FROM moves
    )
SELECT
    facility_id,
    programme,
    sum(active_start) AS active_start,
    sum(enrolled) AS enrolled,
    sum(transferred_in) AS transferred_in,
    sum(transferred_out) AS transferred_out,
    sumMap(discharged) AS discharged,
    sum(active_end) AS active_end,
    sum(take_home_end) AS take_home_end,
    sum(enrolled_year) AS enrolled_year,
    sum(completed_year) AS completed_year
FROM flows
GROUP BY facility_id, programme
