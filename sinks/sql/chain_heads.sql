-- Each facility's last link: position and link hash (the heads projection answers it).
SELECT facility_id, max(position), argMax(link_hash, position)
FROM archive_chain
WHERE facility_id IN {facilities:Array(String)}
GROUP BY facility_id
