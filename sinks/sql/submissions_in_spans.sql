-- Submission rows of one topic whose offset lies in its partition's [start, end) span,
-- decided since a moment (or ever, when since is NULL). Spans come as two arrays indexed
-- by partition + 1.
kafka_topic = %(topic)s
AND kafka_partition < length(%(starts)s)
AND kafka_offset >= arrayElement(%(starts)s, kafka_partition + 1)
AND kafka_offset < arrayElement(%(ends)s, kafka_partition + 1)
AND (%(since)s IS NULL OR decided_at >= %(since)s)
