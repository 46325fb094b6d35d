-- Alerts (CONTRACT §4) as the live stream keeps them: one row per alert_id, the newest
-- version wins. A change (opened, severity, escalation, acknowledgement, resolved) writes the
-- whole row again with sequence + 1; the same row is also published on the alerts topic.

CREATE TABLE IF NOT EXISTS alerts
(
    alert_id        String,
    sequence        UInt32 COMMENT 'grows with every change; the ReplacingMergeTree version',
    kind            LowCardinality(String),
    severity        LowCardinality(String),
    facility_id     LowCardinality(String),
    subject         String COMMENT 'item, patient_ref or report_type/period',
    raised_at       DateTime64(3, 'UTC') COMMENT 'event time at which the condition began',
    status          LowCardinality(String) COMMENT 'open or resolved',
    resolved_at     Nullable(DateTime64(3, 'UTC')),
    noticed_at      DateTime64(3, 'UTC') COMMENT 'wall clock when first stored',
    acknowledged_at Nullable(DateTime64(3, 'UTC')),
    escalated       UInt8,
    message         String,
    message_vi      String,
    details         String COMMENT 'JSON object of kind-specific facts',
    changed_at      DateTime64(3, 'UTC') COMMENT 'wall clock of this version'
)
ENGINE = ReplacingMergeTree(sequence)
ORDER BY alert_id;

-- Acknowledgements by people (`ostwatch alerts ack ID`), kept apart from the computed rows.
CREATE TABLE IF NOT EXISTS alert_acks
(
    alert_id        String,
    acknowledged_at DateTime64(3, 'UTC'),
    note            String
)
ENGINE = ReplacingMergeTree
ORDER BY alert_id;

-- Every patient's events in the patient's order, so that the dispensing controls can read one
-- patient's history without scanning the archive (which is ordered by facility). Written from
-- the archive as events are accepted; identical rows written twice collapse.
CREATE TABLE IF NOT EXISTS patient_events
(
    patient_ref       String,
    occurred_at       DateTime64(3, 'UTC'),
    event_id          UUID,
    event_type        LowCardinality(String),
    facility_id       LowCardinality(String),
    local_date        Date,
    mode              LowCardinality(String),
    take_home_days    UInt8,
    item              LowCardinality(String),
    dose_mg           Float64,
    to_facility_id    LowCardinality(String),
    programme         LowCardinality(String),
    residence_commune String,
    max_days          UInt8,
    reason            LowCardinality(String),
    outcome           LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY (patient_ref, occurred_at, event_id);

-- How far the alert engine has judged the archive (by arrival), so that a restarted worker
-- re-judges only what arrived after it (a crash between archive and alerts loses nothing).
CREATE TABLE IF NOT EXISTS alert_progress
(
    key         UInt8,
    received_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY key;
