-- Two aggregates for the monthly report's speed (issue 17), kept by the intake worker.
--
-- Dispensing per facility, item and local day, kept like the other daily aggregates (0003):
-- each touched key is recomputed from the archive (sinks/sql/dispensing_items_daily.sql), `events` is the version, so late,
-- out-of-order and redelivered doses need no special case, and `reconcile` fills the table
-- from the archive on the first start after this migration.
--
-- Distinct patients cannot be added up over days or facilities, so a row keeps its day's
-- patients as the sorted set of their patient_refs' 128-bit SipHash (what uniqExact counts):
-- a month's distinct patients per unit is the distinct count over its facilities' day sets,
-- about 16 bytes per patient-day instead of a month of doses read back from the archive.

CREATE TABLE IF NOT EXISTS dispensing_items_daily
(
    facility_id        LowCardinality(String),
    item               LowCardinality(String),
    local_date         Date,
    events             UInt64,
    patients           Array(UInt128) COMMENT 'sorted sipHash128 of the patient_refs dosed that day',
    observed_doses     UInt64,
    take_home_handouts UInt64,
    mg_observed        Float64,
    mg_take_home       Float64 COMMENT 'dose_mg × take_home_days of take-home handouts'
)
ENGINE = ReplacingMergeTree(events)
PARTITION BY toYear(local_date)
ORDER BY (facility_id, item, local_date);

-- Each patient's states at every facility (sinks/sql/patient_states.sql): one row per
-- patient, recomputed whole from the timeline whenever an event of theirs is accepted;
-- `version` is the number of the patient's timeline rows, which only grows, so the newest row
-- wins and a resent event rewrites an identical one. The monthly report reads the standing at
-- its period's start and cut-off and the moves in between from these, instead of running the
-- state machine over every timeline on each call.
CREATE TABLE IF NOT EXISTS patient_states
(
    patient_ref String,
    version     UInt64 COMMENT 'the patient''s rows in patient_timeline',
    steps       Array(Tuple(facility_id String, at DateTime64(3, 'UTC'), known UInt8, programme String, state String, previous String, cause String, outcome String))
                COMMENT 'per facility, the state after each instant of a membership change there or an enrolment',
    take_home   Array(Tuple(at DateTime64(3, 'UTC'), value Int8)) COMMENT 'take-home state after each change'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY patient_ref;
