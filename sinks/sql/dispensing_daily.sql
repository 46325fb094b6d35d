-- Dispensing per facility and local day (CONTRACT §3 "Dispensing"), from the archive rows
-- matching {where}. A take-home handout counts on the day it was handed out, with all of its
-- days' milligrams.
SELECT
    facility_id,
    local_date,
    count() AS events,
    uniqExact(patient_ref) AS patients_dosed,
    countIf(mode = 'observed') AS observed_doses,
    countIf(mode = 'take_home') AS take_home_handouts,
    sumIf(dose_mg, mode = 'observed') AS mg_observed,
    sumIf(dose_mg * take_home_days, mode = 'take_home') AS mg_take_home
FROM events_archive
WHERE event_type = 'dose.dispensed' AND ({where})
GROUP BY facility_id, local_date
