-- Each facility's chain: length, head position and hash, links added by a repair.
SELECT facility_id, count(), max(position), argMax(link_hash, position), sum(repaired)
FROM archive_chain
WHERE facility_id IN %(f)s
GROUP BY facility_id
ORDER BY facility_id
