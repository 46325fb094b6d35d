-- Events an aggregate table ({table}) counted.
SELECT sum(events) FROM {table} FINAL
