-- Merge a table into one part: every FINAL read is cheap from the start.
OPTIMIZE TABLE {table} FINAL
