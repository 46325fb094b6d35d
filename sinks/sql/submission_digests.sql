-- The content fingerprint each submission name was last recorded with. The names come as
-- one seq range per source (a batch's seqs are mostly consecutive), so the sort key
-- (source, seq) finds them without parsing thousands of values; the caller drops the
-- extra rows a range brings.
SELECT source, seq, argMax(digest, decided_at)
FROM submissions
WHERE source IN %(sources)s
    AND seq BETWEEN %(low)s AND %(high)s
    AND seq BETWEEN arrayElement(%(lows)s, indexOf(%(sources)s, source))
        AND arrayElement(%(highs)s, indexOf(%(sources)s, source))
GROUP BY source, seq
