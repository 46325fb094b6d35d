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
