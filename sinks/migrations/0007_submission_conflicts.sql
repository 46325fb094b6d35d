-- One submission name (source, seq), one content (the intake's conflict check). Each decided
-- submission keeps a fingerprint of its bytes; a later message that reuses the name with other
-- bytes is refused and kept here, never written over the first submission's row.

ALTER TABLE submissions ADD COLUMN IF NOT EXISTS digest String DEFAULT ''
    COMMENT 'BLAKE2b-128 of the submission bytes when the sender named it; empty otherwise';

CREATE TABLE IF NOT EXISTS submission_conflicts
(
    source          String,
    seq             UInt64,
    digest          String COMMENT 'of this message; the recorded submission has another',
    event_id        String,
    event_type      LowCardinality(String),
    facility_id     LowCardinality(String),
    occurred_at     Nullable(DateTime64(3, 'UTC')),
    reason          String,
    raw             String COMMENT 'the message as a readable line (redacted like a rejected one)',
    decided_at      DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree(decided_at)
ORDER BY (source, seq, digest)
SETTINGS non_replicated_deduplication_window = 1000;
