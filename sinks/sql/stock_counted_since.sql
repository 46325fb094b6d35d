-- The last physical count per facility and item since a local day.
SELECT facility_id, item, max(count_at)
FROM stock_daily
WHERE counted = 1 AND facility_id IN %(facilities)s AND local_date >= %(since)s
GROUP BY facility_id, item
