-- Intake: the immutable archive of accepted events (the system of record) and one row per
-- submission (every message the intake decided on: accepted, rejected or duplicate).

CREATE TABLE IF NOT EXISTS events_archive
(
    event_id          UUID,
    event_type        LowCardinality(String),
    schema_version    UInt16,
    facility_id       LowCardinality(String),
    occurred_at       DateTime64(3, 'UTC') COMMENT 'event time at the source',
    occurred_at_text  String COMMENT 'RFC 3339 text exactly as sent, with its offset',
    local_date        Date COMMENT 'local day of occurred_at in Asia/Ho_Chi_Minh',
    received_at       DateTime64(3, 'UTC') COMMENT 'arrival time at the intake worker',
    source            String COMMENT 'submission source: an ingest run, a producer, or kafka:topic:partition',
    seq               UInt64 COMMENT 'position within the source (line number for ingest)',
    patient_ref       String,
    item              LowCardinality(String),
    dose_mg           Float64,
    mode              LowCardinality(String),
    take_home_days    UInt8,
    quantity          Float64,
    quantity_delta    Float64,
    quantity_on_hand  Float64,
    reason            LowCardinality(String),
    lot               String,
    expiry_date       Nullable(Date),
    programme         LowCardinality(String),
    residence_commune String,
    to_facility_id    LowCardinality(String),
    max_days          UInt8,
    outcome           LowCardinality(String),
    purpose           LowCardinality(String),
    results           Map(String, String),
    report_type       LowCardinality(String),
    period            String,
    supervisor_id     LowCardinality(String),
    payload           String COMMENT 'the event as accepted, canonical contract JSON',
    kafka_topic       LowCardinality(String),
    kafka_partition   UInt32,
    kafka_offset      UInt64,
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(local_date)
ORDER BY (facility_id, occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS submissions
(
    source          String,
    seq             UInt64,
    outcome         Enum8('accepted' = 1, 'rejected' = 2, 'duplicate' = 3),
    event_id        String,
    event_type      LowCardinality(String),
    facility_id     LowCardinality(String),
    occurred_at     Nullable(DateTime64(3, 'UTC')) COMMENT 'event time when it could be read',
    reason          String,
    raw             String COMMENT 'the original bytes, kept for rejected submissions only',
    decided_at      DateTime64(3, 'UTC'),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree(decided_at)
ORDER BY (source, seq)
SETTINGS non_replicated_deduplication_window = 10000;
