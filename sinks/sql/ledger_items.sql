-- Every item with a stock event at the facility up to the month's last day.
SELECT DISTINCT item
FROM stock_daily
WHERE facility_id = %(facility)s AND local_date <= %(last_day)s
ORDER BY item
