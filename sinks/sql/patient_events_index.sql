-- Copy archived patient events matching {where} into the patient index ({columns}: the
-- index's columns, the same names in both tables).
INSERT INTO patient_events ({columns})
SELECT {columns} FROM events_archive
WHERE patient_ref != '' AND ({where})
