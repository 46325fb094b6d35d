-- The monthly report's patient flows (CONTRACT §6) per unit and programme, from timeline rows
-- {timeline} that occurred at or before the report's cut-off, rolled up over {rollup}; for a
-- unit, only the patients who ever joined one of its facilities ({in_scope}), with their
-- whole timeline (their programme is their latest enrolment anywhere).
--
-- A patient's state at a facility is "not active" or "active in programme P" (P = the latest
-- enrolment anywhere, 'unknown' without one), as report_patients.sql reads it at any instant:
-- per (patient, facility) the last membership change wins, a leave beating a join at the
-- same instant, then the larger event_id. Each instant that changes the state is one move:
--   not active → P: `enrolled` (by an enrolment) or `transferred_in` (by a transfer);
--   P → not active: `transferred_out` or `discharged` by the discharge's outcome;
--   P → Q (a new enrolment while active): `enrolled` in Q, and `discharged` from P under the
--   outcome 'programme_changed'.
-- The moves chain the state at the period's start to the state at the cut-off, so
-- active_start + enrolled + transferred_in − transferred_out − Σ discharged = active_end holds
-- on every row by construction. `enrolled_year` and `completed_year` count the same moves
-- from the year's first local midnight (seed 001's Phụ lục 02 counts people treated in the
-- year). Rows: every (facility, programme) report_patients lists at the period's start or at
-- the cut-off, and every one with a move in the year.
--
-- Ties at one instant: a leave (membership −1 → '2') beats a join ('0'), a revocation or a
-- discharge (take_home −1) beats an approval, then the larger event_id.
-- Only patients with a membership change or an enrolment since the year began can have moved:
-- the state machine (a grid of instants and window functions) runs over them alone; the
-- standing at the start and at the cut-off is plain argMax over everyone's timeline.
WITH
    -- `instant` orders the rows as text (argMax over a string is several times cheaper than
    -- over a tuple): the millisecond, fixed width, then what breaks a tie at one instant.
    timeline AS (
        SELECT
            *,
            leftPad(toString(toUnixTimestamp64Milli(occurred_at)), 15, '0') AS instant,
            toString(event_id) AS event_key
        FROM ({timeline})
        WHERE {in_scope}
    ),
    moving AS (
        SELECT DISTINCT patient_ref
        FROM timeline
        WHERE occurred_at >= %(year_start)s
            AND (membership != 0 OR event_type = 'patient.enrolled')
    ),
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
        WHERE membership != 0 AND patient_ref IN moving
        GROUP BY patient_ref, facility_id, at
    ),
    enrolments AS (
        SELECT patient_ref, occurred_at AS at, argMax(toString(programme), event_key) AS programme
        FROM timeline
        WHERE event_type = 'patient.enrolled' AND patient_ref IN moving
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
            side.4 AS take_home_end,
            '' AS figure,
            '' AS outcome,
            toDateTime64(0, 3, 'UTC') AS at
        FROM standings
        ARRAY JOIN arrayFilter(
            x -> x.5,
            [
                tuple(programme_start, at_start, toUInt64(0), toUInt64(0), known > 0),
                tuple(programme_end, toUInt64(0), at_end, take_home_at_end, true)
            ]
        ) AS side
        UNION ALL
        SELECT facility_id, programme, 0, 0, 0, figure, outcome, at
        FROM moves
    ),
    per_facility AS (
        SELECT
            facility_id,
            programme,
            sum(active_start) AS active_start,
            countIf(figure = 'enrolled' AND at >= %(start)s) AS enrolled,
            countIf(figure = 'transferred_in' AND at >= %(start)s) AS transferred_in,
            countIf(figure = 'transferred_out' AND at >= %(start)s) AS transferred_out,
            sumMapIf(map(outcome, toUInt64(1)), figure = 'discharged' AND at >= %(start)s)
                AS discharged,
            sum(active_end) AS active_end,
            sum(take_home_end) AS take_home_end,
            countIf(figure = 'enrolled') AS enrolled_year,
            countIf(figure = 'discharged' AND outcome = 'completed') AS completed_year
        FROM figures
        GROUP BY facility_id, programme
    ),
    rollup AS ({rollup})
SELECT
    r.unit_id AS unit_id,
    f.programme AS programme,
    sum(f.active_start) AS active_start,
    sum(f.enrolled) AS enrolled,
    sum(f.transferred_in) AS transferred_in,
    sum(f.transferred_out) AS transferred_out,
    sumMap(f.discharged) AS discharged,
    sum(f.active_end) AS active_end,
    sum(f.take_home_end) AS take_home_end,
    sum(f.enrolled_year) AS enrolled_year,
    sum(f.completed_year) AS completed_year
FROM per_facility AS f
INNER JOIN rollup AS r ON f.facility_id = r.facility_id
GROUP BY unit_id, programme
SETTINGS join_use_nulls = 0
