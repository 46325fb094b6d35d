-- (reporter, report_type, period) and its earliest report.submitted.
SELECT facility_id, report_type, period, min(occurred_at)
FROM events_archive
WHERE event_type = 'report.submitted'
GROUP BY facility_id, report_type, period
