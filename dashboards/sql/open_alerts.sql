-- Open alerts, most severe and oldest first, in Vietnamese with the English message beside it.
SELECT
    alert_id,
    severity,
    kind,
    facility_id,
    subject,
    raised_at,
    message_vi,
    message
FROM alerts FINAL
WHERE status = 'open' AND facility_id IN ({{facility_scope}})
ORDER BY indexOf(['critical', 'warning', 'info'], severity), raised_at
LIMIT 500
