-- Patients whose patient_states row is missing or older than their timeline (reconcile).
SELECT t.patient_ref
FROM (
    SELECT patient_ref, count() AS version FROM patient_timeline FINAL
    GROUP BY patient_ref
) AS t
LEFT JOIN (
    SELECT patient_ref, max(version) AS version FROM patient_states
    GROUP BY patient_ref
) AS s ON t.patient_ref = s.patient_ref
WHERE t.version != s.version
SETTINGS join_use_nulls = 0
