-- Open alerts by severity (alerts table, newest version of each); every severity is listed,
-- with 0 when none is open, so the panel reads the same on a quiet day.
SELECT s.severity AS severity, toInt64(ifNull(a.open_alerts, 0)) AS open_alerts
FROM (SELECT arrayJoin(['critical', 'warning', 'info']) AS severity) AS s
LEFT JOIN (
    SELECT severity, count() AS open_alerts
    FROM alerts FINAL
    WHERE status = 'open' AND facility_id IN ({{facility_scope}})
    GROUP BY severity
) AS a ON a.severity = s.severity
ORDER BY indexOf(['critical', 'warning', 'info'], s.severity)
