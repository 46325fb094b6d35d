-- Facilities by silence: hours from each one's latest event to T (event time). 24 h without an
-- event is a warning, 48 h critical; facilities that never sent anything come first.
SELECT
    f.facility_id AS facility_id,
    concat(f.name, ' (', f.facility_id, ')') AS facility,
    toString(f.type) AS type,
    e.last_event AS last_event,
    if(e.last_event IS NULL, NULL, round(dateDiff('second', e.last_event, {{t}}) / 3600, 1))
        AS hours_silent,
    multiIf(
        e.last_event IS NULL, 'critical',
        hours_silent >= 48, 'critical',
        hours_silent >= 24, 'warning',
        'ok'
    ) AS status
FROM {{facilities}} AS f
LEFT JOIN (
    SELECT facility_id, toNullable(max(occurred_at)) AS last_event
    FROM events_archive
    GROUP BY facility_id
) AS e ON e.facility_id = f.facility_id
WHERE f.type IN ('treatment_facility', 'dispensing_point', 'commune_health_station')
    AND f.facility_id IN ({{facility_scope}})
ORDER BY e.last_event ASC NULLS FIRST, f.facility_id
