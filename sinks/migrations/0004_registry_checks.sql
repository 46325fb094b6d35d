-- Checks run on every registry load (reference data quality). They are warnings, not errors:
-- the load succeeds and the warnings stay with the version they were found in, e.g. a total
-- printed in targets.csv that differs from the sum of its unit rows.

ALTER TABLE registry_versions
    ADD COLUMN IF NOT EXISTS warnings Array(String) DEFAULT []
    COMMENT 'human-readable warnings of the load, one per finding (e.g. a printed total mismatch)';
