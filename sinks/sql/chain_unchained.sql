-- The archived events to chain ({where}: chain_located.sql or chain_of_facilities.sql,
-- {unchained}: chain_not_chained.sql or nothing) with their content hash, in archive
-- order: a batch shares its received_at; Kafka offset, then the submission's seq, order it.
SELECT facility_id, toString(event_id), {content_hash}
FROM events_archive
WHERE {where} {unchained}
ORDER BY facility_id, received_at, kafka_topic, kafka_partition, kafka_offset, seq, event_id
LIMIT 1 BY facility_id, event_id
