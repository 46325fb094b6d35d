-- Events per facility in archive or chain, whichever is larger (to chunk a verification);
-- every facility when %(all)s, else those listed.
SELECT facility_id, max(n)
FROM (
    SELECT facility_id, count() AS n FROM events_archive
    WHERE %(all)s OR facility_id IN %(facilities)s GROUP BY 1
    UNION ALL
    SELECT facility_id, count() AS n FROM archive_chain
    WHERE %(all)s OR facility_id IN %(facilities)s GROUP BY 1
)
GROUP BY facility_id
ORDER BY facility_id
