-- Stock movements per facility, item and local day, from the archive rows matching {where}.
-- Besides the day's totals it keeps the day's last physical count (latest occurred_at, then
-- event_id) and what moved after it, so that on hand at any later time needs no raw events
-- of that day (CONTRACT §3 "Stock on hand"). A movement at the count's very instant is
-- taken as already counted.
WITH
    movements AS (
        SELECT
            facility_id,
            item,
            local_date,
            occurred_at,
            toString(event_id) AS event_key,
            event_type,
            quantity + quantity_delta AS received_adjusted,
            if(event_type = 'dose.dispensed', dose_mg * take_home_days, 0) AS mg_days,
            toUInt64(event_type = 'test.performed') AS kits,
            quantity_on_hand
        FROM events_archive
        WHERE event_type IN (
                'stock.received', 'stock.adjusted', 'stock.counted', 'dose.dispensed', 'test.performed'
            )
            AND ({where})
    ),
    last_counts AS (
        SELECT
            facility_id,
            item,
            local_date,
            toUInt8(1) AS counted,
            argMax(
                tuple(occurred_at, event_key, quantity_on_hand), tuple(occurred_at, event_key)
            ) AS last
        FROM movements
        WHERE event_type = 'stock.counted'
        GROUP BY facility_id, item, local_date
    )
SELECT
    m.facility_id AS facility_id,
    m.item AS item,
    m.local_date AS local_date,
    count() AS events,
    sumIf(m.received_adjusted, m.event_type = 'stock.received') AS received,
    sumIf(m.received_adjusted, m.event_type = 'stock.adjusted') AS adjusted,
    sum(m.mg_days) AS dose_mg_days,
    sum(m.kits) AS tests,
    any(c.counted) AS counted,
    any(c.last.1) AS count_at,
    any(c.last.2) AS count_event_id,
    any(c.last.3) AS count_on_hand,
    sumIf(m.received_adjusted, c.counted = 1 AND m.occurred_at > c.last.1) AS after_received_adjusted,
    sumIf(m.mg_days, c.counted = 1 AND m.occurred_at > c.last.1) AS after_dose_mg_days,
    sumIf(m.kits, c.counted = 1 AND m.occurred_at > c.last.1) AS after_tests
FROM movements AS m
LEFT JOIN last_counts AS c
    ON m.facility_id = c.facility_id AND m.item = c.item AND m.local_date = c.local_date
GROUP BY m.facility_id, m.item, m.local_date
