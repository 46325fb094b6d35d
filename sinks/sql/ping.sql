-- A trivial query: does ClickHouse answer?
SELECT 1
