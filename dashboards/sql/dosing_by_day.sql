-- Dispensing per local day (the dispensing report's rows), summed over the chosen facilities.
SELECT
    toDateTime(local_date, 'Asia/Ho_Chi_Minh') AS time,
    sum(patients_dosed) AS patients_dosed,
    sum(observed_doses) AS observed_doses,
    sum(take_home_handouts) AS take_home_handouts
FROM dispensing_daily FINAL
WHERE $__dateFilter(local_date) AND facility_id IN ({{facility_scope}})
GROUP BY local_date
ORDER BY local_date
