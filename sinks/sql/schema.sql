-- What migrate() and connect() run around the migrations (sinks/clickhouse.py).

-- name: create_database
CREATE DATABASE IF NOT EXISTS {database}

-- name: migrations_table
-- One line, as `ostwatch schema` prints it.
CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY version

-- name: migrations_applied
SELECT version FROM schema_migrations
