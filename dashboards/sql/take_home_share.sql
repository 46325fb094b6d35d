-- Share of dispensing events that were take-home handouts, per local day.
SELECT
    toDateTime(local_date, 'Asia/Ho_Chi_Minh') AS time,
    round(100 * sum(take_home_handouts) / greatest(sum(observed_doses + take_home_handouts), 1), 1)
        AS take_home_share_pct
FROM dispensing_daily FINAL
WHERE $__dateFilter(local_date) AND facility_id IN ({{facility_scope}})
GROUP BY local_date
ORDER BY local_date
