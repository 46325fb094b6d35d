-- Monthly reports due this month (for last month's period), per reporter of the right type:
-- submitted on time, late, still pending, due soon or overdue, judged at $__toTime (the wall
-- clock in Grafana, as CONTRACT §3 asks of deadlines). As the stream's alert engine reads a
-- deadline: due *before* due_day (clamped to short months), so overdue from that local day on;
-- due soon from {{due_soon_days}} days before it.
WITH
    toDate($__toTime, 'Asia/Ho_Chi_Minh') AS today,
    formatDateTime(toStartOfMonth(today) - 1, '%Y-%m') AS report_period,
    submitted AS (
        SELECT facility_id, report_type, min(occurred_at) AS submitted_at
        FROM events_archive
        WHERE event_type = 'report.submitted' AND period = report_period
            AND occurred_at <= $__toTime
        GROUP BY facility_id, report_type
    )
SELECT
    d.report_type AS report_type,
    f.facility_id AS facility_id,
    concat(f.name, ' (', f.facility_id, ')') AS reporter,
    report_period AS period,
    makeDate(toYear(today), toMonth(today), least(toUInt8(d.due_day), toDayOfMonth(toLastDayOfMonth(today))))
        AS due_date,
    s.submitted_at AS submitted_at,
    multiIf(
        s.submitted_at IS NOT NULL AND toDate(s.submitted_at, 'Asia/Ho_Chi_Minh') < due_date, 'submitted',
        s.submitted_at IS NOT NULL, 'submitted_late',
        today >= due_date, 'overdue',
        today >= due_date - {{due_soon_days}}, 'due_soon',
        'pending'
    ) AS status
FROM {{deadlines}} AS d
INNER JOIN {{facilities}} AS f ON f.type = d.reporter_type
LEFT JOIN (SELECT facility_id, report_type, toNullable(submitted_at) AS submitted_at FROM submitted) AS s
    ON s.facility_id = f.facility_id AND s.report_type = d.report_type
WHERE d.frequency = 'monthly' AND f.facility_id IN ({{facility_scope}})
ORDER BY indexOf(['overdue', 'due_soon', 'submitted_late', 'pending', 'submitted'], status), report_type, facility_id
