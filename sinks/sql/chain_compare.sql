-- Archive rows against chain rows, event by event: copies, distinct content hashes,
-- chain positions and the chained content hash, for every event where they disagree.
SELECT facility_id, toString(event_id), copies, hashes, chained, positions, chain_hash
FROM (
    SELECT facility_id, event_id, count() AS copies,
           groupUniqArray({content_hash}) AS hashes
    FROM events_archive WHERE facility_id IN %(chunk)s
    GROUP BY facility_id, event_id
) AS a
FULL OUTER JOIN (
    SELECT facility_id, event_id, count() AS chained,
           groupArray(position) AS positions, any(content_hash) AS chain_hash
    FROM archive_chain WHERE facility_id IN %(chunk)s
    GROUP BY facility_id, event_id
) AS c USING (facility_id, event_id)
WHERE copies != 1 OR chained != 1 OR hashes != [chain_hash]
SETTINGS join_use_nulls = 0
