-- The patients (within {in_scope}) whose state may have changed since the year's first local
-- midnight: they joined, left or enrolled at some instant from then to the cut-off. Only their
-- timelines go through the monthly report's state machine (monthly_patient_moves.sql).
SELECT DISTINCT patient_ref
FROM ({timeline})
WHERE {in_scope}
    AND occurred_at >= %(year_start)s
    AND (membership != 0 OR event_type = 'patient.enrolled')
