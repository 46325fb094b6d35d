-- The live view's per-facility totals: accepted events, doses, the latest event's time.
SELECT facility_id, count(), countIf(event_type = 'dose.dispensed'), max(occurred_at)
FROM events_archive
GROUP BY facility_id
ORDER BY facility_id
