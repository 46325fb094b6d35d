-- Observed doses against take-home handouts (and the milligrams each carried) in the range.
SELECT
    toInt64(sum(observed_doses)) AS observed_doses,
    toInt64(sum(take_home_handouts)) AS take_home_handouts,
    round(sum(mg_observed)) AS mg_observed,
    round(sum(mg_take_home)) AS mg_take_home
FROM dispensing_daily FINAL
WHERE $__dateFilter(local_date) AND facility_id IN ({{facility_scope}})
