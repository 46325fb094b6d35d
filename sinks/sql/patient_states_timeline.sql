-- The timeline rows patient_states is computed from (patient_states.sql's {timeline}).
SELECT * FROM patient_timeline FINAL WHERE {where}
