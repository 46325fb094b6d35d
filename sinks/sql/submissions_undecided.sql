-- Which of these submission names have a row at all.
SELECT source, seq FROM submissions WHERE (source, seq) IN %(keys)s
