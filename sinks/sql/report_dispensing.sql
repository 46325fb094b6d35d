-- Dispensing per facility and local day, from day rows {days}.
SELECT
    facility_id,
    local_date,
    patients_dosed,
    observed_doses,
    take_home_handouts,
    mg_observed,
    mg_take_home
FROM ({days})
ORDER BY facility_id, local_date
