-- The newest registry version (0 when none was loaded).
SELECT max(version) FROM registry_versions
