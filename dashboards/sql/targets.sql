-- Patients on treatment against the annual targets of each unit (CONTRACT §3 "Targets"), for
-- the year of T: actuals roll up the unit and every facility up to three levels below it.
WITH
    standing AS ({{patients}}),
    units AS (
        SELECT
            f.facility_id AS facility_id,
            arrayJoin(arrayDistinct(arrayFilter(
                x -> x != '', [f.facility_id, f.parent_id, p.parent_id, g.parent_id]
            ))) AS unit
        FROM {{facilities}} AS f
        LEFT JOIN {{facilities}} AS p ON p.facility_id = f.parent_id
        LEFT JOIN {{facilities}} AS g ON g.facility_id = p.parent_id
    ),
    actuals AS (
        SELECT
            u.unit AS unit,
            sumIf(s.active - s.take_home_approved, s.programme IN ('methadone', 'buprenorphine'))
                AS routine_actual,
            sumIf(s.take_home_approved, s.programme IN ('methadone', 'buprenorphine'))
                AS take_home_actual,
            sumIf(s.active, s.programme = 'community_detox') AS community_detox_actual
        FROM standing AS s
        INNER JOIN units AS u ON u.facility_id = s.facility_id
        GROUP BY u.unit
    )
SELECT
    t.facility_id AS facility_id,
    concat(f.name, ' (', t.facility_id, ')') AS unit,
    t.year AS year,
    ifNull(t.routine_target, 0) AS routine_target,
    toInt64(a.routine_actual) AS routine_actual,
    ifNull(t.take_home_target, 0) AS take_home_target,
    toInt64(a.take_home_actual) AS take_home_actual,
    ifNull(t.community_detox_target, 0) AS community_detox_target,
    toInt64(a.community_detox_actual) AS community_detox_actual,
    if(routine_target > 0, round(100 * routine_actual / routine_target, 1), NULL)
        AS routine_pct
FROM {{targets}} AS t
LEFT JOIN actuals AS a ON a.unit = t.facility_id
LEFT JOIN {{facilities}} AS f ON f.facility_id = t.facility_id
WHERE t.year = toYear({{t_day}}) AND t.facility_id IN ({{facility_scope}})
ORDER BY t.facility_id
