-- The first offsets of one partition's span that have no decision ({in_spans}:
-- submissions_in_spans.sql).
SELECT %(start)s + number AS o
FROM numbers(%(end)s - %(start)s)
WHERE o NOT IN (
    SELECT kafka_offset FROM submissions WHERE {in_spans} AND kafka_partition = %(partition)s
)
ORDER BY o
LIMIT %(limit)s
