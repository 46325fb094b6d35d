-- The export's files: events per facility and local month matching {where}.
SELECT facility_id, substring(toString(local_date), 1, 7) AS month, count()
FROM events_archive
WHERE {where}
GROUP BY facility_id, month
ORDER BY facility_id, month
