-- Reports falling due this month, per reporter of the right type: for every frequency, the
-- period that ended with last month (monthly: last month; quarterly: YYYY-Qn in January,
-- April, July and October; half-yearly: YYYY-H1/H2 in July and January; yearly: in January),
-- as schemas/calendar.py reads the calendar. Submitted on time, late, still pending, due soon
-- or overdue, judged at $__toTime (the wall clock in Grafana, as CONTRACT §3 asks of
-- deadlines). As the stream's alert engine reads a deadline: due *before* due_day (clamped
-- to short months), so overdue from that local day on; due soon from {{due_soon_days}} days
-- before it. The recipient is the unit deadlines.csv names (empty when it names none).
WITH
    toDate($__toTime, 'Asia/Ho_Chi_Minh') AS today,
    toStartOfMonth(today) - 1 AS period_end,
    due AS (
        SELECT
            report_type,
            due_day,
            reporter_type,
            recipient_id,
            multiIf(
                frequency = 'quarterly',
                    concat(toString(toYear(period_end)), '-Q', toString(toQuarter(period_end))),
                frequency = 'half_yearly',
                    concat(toString(toYear(period_end)), if(toMonth(period_end) <= 6, '-H1', '-H2')),
                frequency = 'yearly', toString(toYear(period_end)),
                formatDateTime(period_end, '%Y-%m')
            ) AS period
        FROM {{deadlines}}
        WHERE multiIf(
            frequency = 'quarterly', toMonth(period_end) % 3 = 0,
            frequency = 'half_yearly', toMonth(period_end) % 6 = 0,
            frequency = 'yearly', toMonth(period_end) = 12,
            1
        )
    ),
    submitted AS (
        SELECT facility_id, report_type, period, min(occurred_at) AS submitted_at
        FROM events_archive
        WHERE event_type = 'report.submitted' AND occurred_at <= $__toTime
            AND (report_type, period) IN (SELECT report_type, period FROM due)
        GROUP BY facility_id, report_type, period
    )
SELECT
    d.report_type AS report_type,
    f.facility_id AS facility_id,
    concat(f.name, ' (', f.facility_id, ')') AS reporter,
    d.period AS period,
    period_end,
    if(d.recipient_id = '', '', concat(r.name, ' (', d.recipient_id, ')')) AS recipient,
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
FROM due AS d
INNER JOIN {{facilities}} AS f ON f.type = d.reporter_type
LEFT JOIN {{facilities}} AS r ON r.facility_id = d.recipient_id
LEFT JOIN (
    SELECT facility_id, report_type, period, toNullable(submitted_at) AS submitted_at FROM submitted
) AS s
    ON s.facility_id = f.facility_id AND s.report_type = d.report_type AND s.period = d.period
WHERE f.facility_id IN ({{facility_scope}})
ORDER BY indexOf(['overdue', 'due_soon', 'submitted_late', 'pending', 'submitted'], status), report_type, facility_id
