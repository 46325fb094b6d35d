"""ClickHouse, through clickhouse-connect only: migrations, idempotent batch writes, queries.

Knows no Faust: the same code serves the stream worker, the CLI and the dashboards.
"""
