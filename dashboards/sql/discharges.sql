-- Discharges by outcome in the time range.
SELECT toString(outcome) AS outcome, count() AS discharges
FROM events_archive
WHERE event_type = 'patient.discharged' AND $__timeFilter(occurred_at)
    AND facility_id IN ({{facility_scope}})
GROUP BY outcome
ORDER BY discharges DESC, outcome
