-- Dispensing per facility and local day (CONTRACT §3 "Dispensing"), from the archive rows
-- matching {where}. A take-home handout counts on the day it was handed out, with all of its
-- days' milligrams.
SELECT
    facility_id,
    local_date,
    count() AS events,
    uniqExact(patient_ref) AS patients_dosed,
    {dose_figures}
FROM events_archive
WHERE event_type = 'dose.dispensed' AND ({where})
GROUP BY facility_id, local_date
