-- A scratch store beside the live one (sinks/replay.py scratch_store): its archive a view
-- of the live archive ({live}: the live database), its registry tables a copy.

-- name: drop_archive
-- Later migrations may hang views on the archive table; the view replacing it keeps the
-- same name and columns.
DROP TABLE events_archive SETTINGS check_table_dependencies = 0

-- name: archive_view
CREATE VIEW events_archive AS SELECT * FROM {live}.events_archive

-- name: registry_tables
SELECT name
FROM system.tables
WHERE database = %(db)s
    AND startsWith(name, 'registry')
    AND engine NOT IN ('View', 'MaterializedView')

-- name: copy_table
INSERT INTO {table} SELECT * FROM {live}.{table}

-- name: drop
DROP DATABASE IF EXISTS {database}
