-- Which archived events a chain statement (chain_unchained.sql) covers: {where} takes
-- located or of_facilities, {unchained} takes not_chained or nothing.

-- name: located
-- Archived events by (facility, id), shaped for the archive's primary key (facility_id,
-- occurred_at): their facilities, the span of their occurred_at, then their ids. Bound
-- server-side: a 5,000-event batch's ids as literals would exceed the query size limit.
facility_id IN {facilities:Array(String)}
AND occurred_at >= {from:DateTime64(3, 'UTC')}
AND occurred_at <= {to:DateTime64(3, 'UTC')}
AND event_id IN {ids:Array(UUID)}

-- name: of_facilities
-- Archived events of some facilities (the start-up repair, chunk by chunk).
facility_id IN {facilities:Array(String)}

-- name: not_chained
-- Only events not in the chain yet (a lookup scanning the facilities' chains).
AND (facility_id, event_id) NOT IN (
    SELECT facility_id, event_id FROM archive_chain
    WHERE facility_id IN {facilities:Array(String)}
)
