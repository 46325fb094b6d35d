-- The day rows of an aggregate as of T (sinks/reports.py day_rows).

-- name: live
-- Complete days from the live table ({table}, its {columns}) matching {where}.
SELECT {columns} FROM {table} FINAL WHERE {where}

-- name: with_tail
-- The complete days ({older}), then T's own day recomputed from the archive ({tail}).
{older}
UNION ALL
{tail}
