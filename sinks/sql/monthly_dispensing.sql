-- The monthly report's dispensing (CONTRACT §6) per unit and item, from the period's doses
-- in the archive up to the cut-off ({before_cut}), rolled up over {rollup}: patients_dosed
-- counts distinct patient_refs over the whole unit (a patient dosed at two of its facilities
-- counts once), the other figures add up.
WITH
    doses AS (
        SELECT
            facility_id,
            item,
            uniqExactState(patient_ref) AS patients,
            countIf(mode = 'observed') AS observed_doses,
            countIf(mode = 'take_home') AS take_home_handouts,
            sumIf(dose_mg, mode = 'observed') AS mg_observed,
            sumIf(dose_mg * take_home_days, mode = 'take_home') AS mg_take_home
        FROM events_archive
        WHERE event_type = 'dose.dispensed'
            AND local_date >= %(first_day)s AND local_date <= %(cut_day)s
            AND {before_cut} AND ({where})
        GROUP BY facility_id, item
    ),
    rollup AS ({rollup})
SELECT
    r.unit_id AS unit_id,
    d.item AS item,
    uniqExactMerge(d.patients) AS patients_dosed,
    sum(d.observed_doses) AS observed_doses,
    sum(d.take_home_handouts) AS take_home_handouts,
    sum(d.mg_observed) AS mg_observed,
    sum(d.mg_take_home) AS mg_take_home
FROM doses AS d
INNER JOIN rollup AS r ON d.facility_id = r.facility_id
GROUP BY unit_id, item
