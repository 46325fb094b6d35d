-- Reference data (CONTRACT §2). Every load is a new version; earlier versions stay.

CREATE TABLE IF NOT EXISTS registry_versions
(
    version     UInt32,
    loaded_at   DateTime64(3, 'UTC'),
    source      String COMMENT 'where the files came from (a directory path)',
    sha256      String COMMENT 'digest of the files, to see whether a load changed anything',
    files       Map(String, String) COMMENT 'the CSV files exactly as loaded'
)
ENGINE = MergeTree
ORDER BY version;

CREATE TABLE IF NOT EXISTS registry_facilities
(
    version     UInt32,
    facility_id String,
    name        String,
    type        LowCardinality(String),
    parent_id   String,
    district    String,
    province    String
)
ENGINE = MergeTree
ORDER BY (version, facility_id);

CREATE TABLE IF NOT EXISTS registry_items
(
    version     UInt32,
    item        String,
    name        String,
    kind        LowCardinality(String),
    unit        LowCardinality(String),
    mg_per_unit Nullable(Float64)
)
ENGINE = MergeTree
ORDER BY (version, item);

CREATE TABLE IF NOT EXISTS registry_targets
(
    version                UInt32,
    facility_id            String,
    year                   UInt16,
    routine_target         Nullable(UInt32),
    take_home_target       Nullable(UInt32),
    community_detox_target Nullable(UInt32)
)
ENGINE = MergeTree
ORDER BY (version, facility_id, year);

CREATE TABLE IF NOT EXISTS registry_deadlines
(
    version       UInt32,
    report_type   String,
    frequency     LowCardinality(String),
    due_day       UInt8,
    reporter_type LowCardinality(String)
)
ENGINE = MergeTree
ORDER BY (version, report_type);
