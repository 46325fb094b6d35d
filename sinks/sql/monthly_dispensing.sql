-- The monthly report's dispensing (CONTRACT §6) per unit and item, from the day rows {days}
-- of dispensing_items_daily (the period's days up to the cut-off), rolled up over {rollup}:
-- patients_dosed counts distinct patients over the whole unit and month (a patient dosed on
-- two days, or at two of its facilities, counts once: the distinct count of the day sets'
-- hashes), the other figures add up. Each facility's month is merged first (a few hundred
-- rows), so the roll-up joins no day rows.
WITH
    days AS ({days}),
    doses AS (
        SELECT
            facility_id,
            item,
            uniqExactArrayState(patients) AS patients,
            sum(observed_doses) AS observed_doses,
            sum(take_home_handouts) AS take_home_handouts,
            sum(mg_observed) AS mg_observed,
            sum(mg_take_home) AS mg_take_home
        FROM days
        GROUP BY facility_id, item
    ),
    rollup AS ({rollup})
SELECT
    r.unit_id AS unit_id,
    d.item AS item,
    uniqExactArrayMerge(d.patients) AS patients_dosed,
    sum(d.observed_doses) AS observed_doses,
    sum(d.take_home_handouts) AS take_home_handouts,
    sum(d.mg_observed) AS mg_observed,
    sum(d.mg_take_home) AS mg_take_home
FROM doses AS d
INNER JOIN rollup AS r ON d.facility_id = r.facility_id
GROUP BY unit_id, item
