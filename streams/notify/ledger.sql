-- Delivery state of alert changes (SQLite, WAL). One row per change, one per
-- (change, notifier, recipient). Timestamps are Unix seconds (UTC).
CREATE TABLE IF NOT EXISTS changes (
    idempotency_key TEXT PRIMARY KEY,          -- alert_id/sequence
    alert_id        TEXT NOT NULL,
    sequence        INTEGER NOT NULL,
    change          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    facility_id     TEXT NOT NULL,
    payload         BLOB NOT NULL,             -- the AlertChange JSON as received
    received_at     REAL NOT NULL,
    source          TEXT NOT NULL,             -- topic/partition/offset of the first copy
    redelivered     INTEGER NOT NULL DEFAULT 0 -- copies seen again (Kafka redelivery)
);
CREATE INDEX IF NOT EXISTS changes_alert ON changes (alert_id, sequence);

CREATE TABLE IF NOT EXISTS deliveries (
    idempotency_key TEXT NOT NULL REFERENCES changes (idempotency_key),
    notifier        TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    fallback        INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    sent_at         REAL,
    PRIMARY KEY (idempotency_key, notifier, recipient)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_lane ON deliveries (notifier, recipient, status);

-- Pending deliveries that may go now as far as order goes: a change waits while an earlier
-- change of the same alert is still pending for the same notifier and recipient, so no
-- recipient hears 'resolved' before 'opened'. Recreated on every start (it holds no data).
DROP VIEW IF EXISTS deliverable;
CREATE VIEW deliverable AS
SELECT d.idempotency_key, d.notifier, d.recipient, d.attempts, d.next_attempt_at,
       c.payload, c.rowid AS arrival
FROM deliveries d JOIN changes c USING (idempotency_key)
WHERE d.status = 'pending'
  AND NOT EXISTS (
      SELECT 1 FROM deliveries e JOIN changes f USING (idempotency_key)
      WHERE f.alert_id = c.alert_id AND f.sequence < c.sequence
        AND e.notifier = d.notifier AND e.recipient = d.recipient AND e.status = 'pending');
