-- Per partition, how many offsets in its span have a decision ({in_spans}:
-- submissions_in_spans.sql).
SELECT kafka_partition, uniqExact(kafka_offset)
FROM submissions
WHERE {in_spans}
GROUP BY kafka_partition
