-- The checks of replay_compare.sql, one per column: {label} is its name as a string
-- literal, {name} the checked identifier (l. is the live row, r. the replayed one).

-- name: row
tuple('(row)', if(l._in = 1, 'present', 'missing'), if(r._in = 1, 'present', 'missing'),
      l._in != r._in)

-- name: float
-- Float sums may be added up in another order by another plan: closer than a relative
-- 1e-9 is equal (REL_TOLERANCE in sinks/replay.py).
tuple({label}, toJSONString(l.{name}), toJSONString(r.{name}),
      l._in = 1 AND r._in = 1
      AND NOT (abs(l.{name} - r.{name}) <= 1e-9 * greatest(1., abs(l.{name}), abs(r.{name}))))

-- name: exact
tuple({label}, toJSONString(l.{name}), toJSONString(r.{name}),
      l._in = 1 AND r._in = 1 AND NOT (toJSONString(l.{name}) = toJSONString(r.{name})))

-- name: key_json
toJSONString({name})
