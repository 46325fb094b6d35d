-- Archived events per facility (compared with chain_links_per_facility.sql).
SELECT facility_id, count() FROM events_archive GROUP BY 1
