-- Move the archive's bounds (latest and earliest occurred_at) to cover a batch.
INSERT INTO archive_bounds VALUES (0, %(latest)s, %(earliest)s)
