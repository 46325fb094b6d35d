-- Lots received with an expiry date, nearest expiry first: red once expired at T, amber
-- within 90 days.
SELECT
    facility_id,
    item,
    lot,
    expiry_date,
    round(sum(quantity), 1) AS quantity_received,
    dateDiff('day', {{t_day}}, expiry_date) AS days_to_expiry,
    multiIf(days_to_expiry < 0, 'critical', days_to_expiry < 90, 'warning', 'ok') AS status
FROM events_archive
WHERE event_type = 'stock.received' AND expiry_date IS NOT NULL
    AND facility_id IN ({{facility_scope}})
GROUP BY facility_id, item, lot, expiry_date
ORDER BY expiry_date, facility_id, item
LIMIT 200
