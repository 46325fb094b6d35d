-- Recomputed patient_states rows (versioned by the number of timeline rows: the newest wins).
INSERT INTO patient_states (patient_ref, version, steps, take_home)
{select}
