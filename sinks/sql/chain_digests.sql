-- Per facility of a chunk: how many rows {table} holds and the SHA-256 of their content
-- hashes ({content}) ordered by event_id. Equal on both sides: same events, same content.
SELECT facility_id,
       tuple(count(), SHA256(arrayStringConcat(arrayMap(x -> x.2, arraySort(x -> x.1,
           groupArray((event_id, {content})))))))
FROM {table}
WHERE facility_id IN %(chunk)s
GROUP BY facility_id
