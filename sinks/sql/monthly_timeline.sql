-- The timeline rows {timeline} of the patients {in_scope}, each with `instant` and
-- `event_key`, so that argMax orders them as text (several times cheaper than over a tuple):
-- the millisecond at a fixed width, then what breaks a tie at one instant, then the event_id.
SELECT
    *,
    leftPad(toString(toUnixTimestamp64Milli(occurred_at)), 15, '0') AS instant,
    toString(event_id) AS event_key
FROM ({timeline})
WHERE {in_scope}
