-- The stock events of one facility in one local month, for the ledger (sinks/ledger.py), in
-- the order on hand follows them (CONTRACT §3, as the stock report reads it): by occurred_at;
-- at one instant the movements first (a count already includes them), then the counts by
-- event_id (the last one is the one that stands).
SELECT
    item,
    event_type,
    reason,
    occurred_at,
    toString(event_id) AS event_key,
    quantity,
    quantity_delta,
    quantity_on_hand,
    dose_mg,
    take_home_days
FROM events_archive
WHERE facility_id = %(facility)s
    AND item IN %(items)s
    AND local_date >= %(first_day)s
    AND local_date <= %(last_day)s
    AND event_type IN (
        'stock.received', 'stock.adjusted', 'stock.counted', 'dose.dispensed', 'test.performed'
    )
ORDER BY item, occurred_at, event_type = 'stock.counted', event_key
