-- Stock on hand per facility and item at T (CONTRACT §3): the last physical count at or
-- before T plus every movement after it, from day rows {days} (complete days before T's
-- local day, and T's own day up to T). Units: a dose uses dose_mg × days / mg_per_unit,
-- a test one kit. Also returns what the 14-day average daily use needs.
WITH
    valued AS (
        SELECT
            facility_id,
            item,
            local_date,
            counted,
            count_on_hand,
            transform(toString(item), %(items)s, %(mg_per_unit)s, 0.) AS mg_per_unit,
            if(mg_per_unit > 0, dose_mg_days / mg_per_unit, 0.) + tests AS used,
            received + adjusted - used AS net,
            after_received_adjusted
                - if(mg_per_unit > 0, after_dose_mg_days / mg_per_unit, 0.) - after_tests AS net_after_count
        FROM ({days})
    ),
    running AS (
        SELECT
            *,
            sum(net) OVER (
                PARTITION BY facility_id, item ORDER BY local_date
                ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
            ) AS net_later_days
        FROM valued
    )
SELECT
    facility_id,
    item,
    if(
        max(counted) = 1,
        argMaxIf(count_on_hand + net_after_count + net_later_days, local_date, counted = 1),
        sum(net)
    ) AS on_hand,
    minIfOrNull(local_date, used > 0) AS first_use,
    sumIf(used, local_date >= %(window_start)s) AS used_in_window
FROM running
GROUP BY facility_id, item
ORDER BY facility_id, item
