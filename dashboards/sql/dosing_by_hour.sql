-- Doses handed out per local hour, observed and take-home, in the dashboard's time range.
SELECT
    toStartOfHour(occurred_at) AS time,
    countIf(mode = 'observed') AS observed,
    countIf(mode = 'take_home') AS take_home
FROM events_archive
WHERE event_type = 'dose.dispensed' AND $__timeFilter(occurred_at)
    AND facility_id IN ({{facility_scope}})
GROUP BY time
ORDER BY time
