-- The duplicate filter's key of every archived event_id (streams/intake/seen.py
-- ``filter_key``): the two 64-bit halves of its UUID, big-endian as written, xor-ed.
SELECT bitXor(
    reinterpretAsUInt64(reverse(substring(UUIDToNum(event_id), 1, 8))),
    reinterpretAsUInt64(reverse(substring(UUIDToNum(event_id), 9, 8)))
)
FROM events_archive
