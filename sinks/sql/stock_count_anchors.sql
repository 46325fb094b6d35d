-- Per facility and item, the last physical count before a local day ({where}: which stock
-- events): its time and value.
SELECT facility_id, item,
       argMax(tuple(occurred_at, quantity_on_hand), tuple(occurred_at, toString(event_id)))
FROM events_archive
WHERE {where} AND event_type = 'stock.counted' AND local_date < %(since_day)s
GROUP BY facility_id, item
