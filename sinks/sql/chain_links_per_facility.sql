-- Chain links per facility (compared with chain_archived_per_facility.sql).
SELECT facility_id, count() FROM archive_chain GROUP BY 1
