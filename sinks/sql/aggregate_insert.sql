-- Recompute rows of an aggregate table ({table}, its {columns}) from the archive: {select}
-- is the table's own file (dispensing_daily.sql, …) filled with the rows to cover.
INSERT INTO {table} ({columns}) {select}
