-- Tamper evidence: a hash chain per facility over the archived events.
--
-- A side table rather than columns of events_archive: the archive stays insert-only (a chain
-- written into it would need ALTER … UPDATE, the very mutation the chain is meant to expose),
-- events archived before this migration or by a worker that died between the two writes can
-- be chained later without rewriting the system of record, and the archive's columns, its
-- Avro export and replay stay as they were. Position n of a facility's chain is its n-th
-- archived event (0-based, in archive order); link_hash = SHA-256(prev_hash ‖ content_hash)
-- and content_hash = SHA-256 of the archived row's canonical text (sinks/chain.py).
-- A plain MergeTree on purpose: two rows at one position (a fork) must stay visible.

CREATE TABLE IF NOT EXISTS archive_chain
(
    facility_id  LowCardinality(String),
    position     UInt64 COMMENT '0, 1, 2 … in the order the facility''s events were archived',
    event_id     UUID,
    content_hash FixedString(32) COMMENT 'SHA-256 of the archived row''s canonical text',
    prev_hash    FixedString(32) COMMENT 'link_hash at position − 1; 32 zero bytes at 0',
    link_hash    FixedString(32) COMMENT 'SHA-256(prev_hash ‖ content_hash)',
    chained_at   DateTime64(3, 'UTC'),
    repaired     UInt8 COMMENT '1 when chained at worker start, not right after archiving',
    -- Each facility's head (the next link's predecessor) in a few rows, however long the chain.
    PROJECTION heads (SELECT facility_id, max(position), argMax(link_hash, position) GROUP BY facility_id)
)
ENGINE = MergeTree
ORDER BY (facility_id, position);
