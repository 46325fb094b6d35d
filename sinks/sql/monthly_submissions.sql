-- The first report.submitted at or before T for each (reporter, report type, period) the
-- monthly report's timeliness list asks about (%(wanted)s: report type and period pairs), by
-- the reporters it lists (%(reporters)s: the archive's primary key starts with facility_id).
SELECT
    facility_id,
    toString(report_type) AS report_type,
    period,
    min(occurred_at) AS submitted_at
FROM events_archive
WHERE event_type = 'report.submitted'
    AND occurred_at <= %(t)s
    AND (toString(report_type), period) IN %(wanted)s
    AND facility_id IN %(reporters)s
GROUP BY facility_id, report_type, period
