-- Which of these events are in the chain now (bound server-side, like chain_located.sql).
SELECT toString(event_id)
FROM archive_chain
WHERE facility_id IN {facilities:Array(String)} AND event_id IN {ids:Array(UUID)}
