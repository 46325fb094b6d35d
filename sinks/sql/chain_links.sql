-- Each link against its own content and the link before it (the first follows 32 zero
-- bytes); positions must run 0, 1, 2 …
SELECT facility_id, position, toString(event_id), altered, broken, step
FROM (
    SELECT facility_id, position, event_id,
           link_hash != SHA256(concat(prev_hash, content_hash)) AS altered,
           prev_hash != lagInFrame(link_hash, 1, toFixedString(unhex(repeat('00', 32)), 32))
               OVER w AS broken,
           toInt64(position) - lagInFrame(toInt64(position), 1, -1) OVER w AS step
    FROM archive_chain WHERE facility_id IN %(chunk)s
    WINDOW w AS (PARTITION BY facility_id ORDER BY position
                 ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
WHERE altered OR broken OR step != 1
ORDER BY facility_id, position
