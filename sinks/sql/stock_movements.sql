-- Every stock movement matching {where}, in the item's units: a count carries the count,
-- other events their signed change (a dose converted by the item's mg per unit).
SELECT facility_id, item, occurred_at, toString(event_id), event_type,
    multiIf(
        event_type = 'stock.counted', quantity_on_hand,
        event_type = 'stock.received', quantity,
        event_type = 'stock.adjusted', quantity_delta,
        event_type = 'test.performed', -1,
        -dose_mg * greatest(take_home_days, 1) / transform(item, %(items)s, %(mg)s, 0)
    ) AS units
FROM events_archive
WHERE {where}
    AND NOT (event_type = 'dose.dispensed' AND NOT has(%(items)s, item))
ORDER BY facility_id, item, occurred_at
