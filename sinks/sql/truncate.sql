-- Empty a table (an aggregate before its rebuild).
TRUNCATE TABLE {table}
