-- Live aggregates behind the reports (CONTRACT §3), kept by the intake worker.
--
-- Daily tables hold one row per key (facility and local day, plus item for stock). Whenever
-- an accepted event touches a key, the worker recomputes that key's row from the archive
-- (sinks/aggregates/*.sql) before it commits the Kafka offsets. `events`, the number of
-- archived events behind a row, is the ReplacingMergeTree version: the archive only grows,
-- so a row built from more events is the newer one, and two rows built from the same events
-- are identical. Late, out-of-order and redelivered events therefore need no special case.
--
-- A report "as of T" reads the daily rows before T's local day and aggregates the archive
-- for T's own day up to T with the very same SELECT (see sinks/reports.py).

CREATE TABLE IF NOT EXISTS dispensing_daily
(
    facility_id        LowCardinality(String),
    local_date         Date,
    events             UInt64,
    patients_dosed     UInt64 COMMENT 'distinct patient_ref dosed that local day',
    observed_doses     UInt64,
    take_home_handouts UInt64,
    mg_observed        Float64,
    mg_take_home       Float64 COMMENT 'dose_mg × take_home_days of take-home handouts'
)
ENGINE = ReplacingMergeTree(events)
PARTITION BY toYear(local_date)
ORDER BY (facility_id, local_date);

CREATE TABLE IF NOT EXISTS stock_daily
(
    facility_id             LowCardinality(String),
    item                    LowCardinality(String),
    local_date              Date,
    events                  UInt64,
    received                Float64 COMMENT 'sum of stock.received quantity',
    adjusted                Float64 COMMENT 'sum of stock.adjusted quantity_delta (signed)',
    dose_mg_days            Float64 COMMENT 'sum of dose_mg × days of doses; units = this / mg_per_unit',
    tests                   UInt64 COMMENT 'tests performed with this kit (one kit each)',
    counted                 UInt8 COMMENT '1 when the day has a stock.counted',
    count_at                DateTime64(3, 'UTC') COMMENT 'the day''s last physical count',
    count_event_id          String,
    count_on_hand           Float64,
    after_received_adjusted Float64 COMMENT 'receipts and adjustments after that count',
    after_dose_mg_days      Float64 COMMENT 'doses after that count',
    after_tests             UInt64 COMMENT 'tests after that count'
)
ENGINE = ReplacingMergeTree(events)
PARTITION BY toYear(local_date)
ORDER BY (facility_id, item, local_date);

CREATE TABLE IF NOT EXISTS tests_daily
(
    facility_id LowCardinality(String),
    local_date  Date,
    events      UInt64,
    tests       UInt64,
    positive    Map(String, UInt64) COMMENT 'substance → positive results'
)
ENGINE = ReplacingMergeTree(events)
PARTITION BY toYear(local_date)
ORDER BY (facility_id, local_date);

-- Patient lifecycle as changes of state, one row per facility an event affects: a transfer
-- is a leave at its facility and a join at to_facility_id. Written per event from the
-- archive; identical rows written twice collapse, and every query takes argMax per key.
CREATE TABLE IF NOT EXISTS patient_timeline
(
    patient_ref String,
    facility_id LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    event_id    UUID,
    event_type  LowCardinality(String),
    membership  Int8 COMMENT '+1 joins the facility (enrolled, transferred in), -1 leaves it, 0 neither',
    take_home   Int8 COMMENT '+1 take-home approved, -1 revoked or discharged, 0 neither',
    programme   LowCardinality(String) COMMENT 'for enrolments',
    max_days    UInt8 COMMENT 'for take-home approvals'
)
ENGINE = ReplacingMergeTree
ORDER BY (patient_ref, occurred_at, event_id, facility_id);

-- The latest and earliest occurred_at in the archive: "now" in event time for a report
-- without --as-of. max/min are idempotent, so a re-sent row changes nothing.
CREATE TABLE IF NOT EXISTS archive_bounds
(
    key                  UInt8,
    latest_occurred_at   SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    earliest_occurred_at SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY key;
