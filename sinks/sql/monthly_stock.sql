-- The monthly report's stock ledger (CONTRACT §6) per facility and item (sinks/monthly.py rolls
-- them up), from day rows {days} (every stock day up to the report's cut-off), read once.
-- Opening is on hand at the period's start, closing on hand at the cut-off, as report_stock.sql
-- computes it (the last physical count, what moved after it that day, and every later day's
-- movements; without a count, every day's movements), here over each facility and item's days
-- gathered in date order: before the period for the opening, all of them for the closing.
-- Received, adjusted and used sum the period's days (a dose uses dose_mg × days / mg_per_unit,
-- a test one kit). A count resets on hand, so the month's count difference is what the
-- movements leave unexplained: closing − opening − received − adjusted + used, i.e. the sum
-- over the period's counts of (counted − computed just before) — computed in sinks/monthly.py.
WITH
    days AS ({days}),
    valued AS (
        SELECT
            facility_id,
            item,
            local_date,
            counted,
            received,
            adjusted,
            transform(toString(item), %(items)s, %(mg_per_unit)s, 0.) AS mg_per_unit,
            if(mg_per_unit > 0, dose_mg_days / mg_per_unit, 0.) + tests AS used,
            received + adjusted - used AS net,
            count_on_hand + (
                after_received_adjusted
                    - if(mg_per_unit > 0, after_dose_mg_days / mg_per_unit, 0.) - after_tests
            ) AS counted_then
        FROM days
    ),
    ledgers AS (
        SELECT
            facility_id,
            item,
            arraySort(day -> day.1, groupArray(tuple(local_date, counted, counted_then, net)))
                AS all_days,
            arrayFilter(day -> day.1 < %(first_day)s, all_days) AS before_days,
            sumIf(received, local_date >= %(first_day)s) AS received,
            sumIf(adjusted, local_date >= %(first_day)s) AS adjusted,
            sumIf(used, local_date >= %(first_day)s) AS used
        FROM valued
        GROUP BY facility_id, item
    )
SELECT
    facility_id,
    item,
    -- On hand after a run of days: the last count's (0 and every day without one) plus the
    -- movements of the days after it; before the period for the opening, all for the closing.
    arrayMap(
        days -> days[arrayLastIndex(day -> day.2 = 1, days)].3
            + arraySum(day -> day.4, arraySlice(days, arrayLastIndex(day -> day.2 = 1, days) + 1)),
        [before_days, all_days]
    ) AS on_hand,
    on_hand[1] AS opening,
    received,
    adjusted,
    used,
    on_hand[2] AS closing
FROM ledgers
