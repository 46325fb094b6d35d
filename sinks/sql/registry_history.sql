-- Every registry version as loaded, oldest first (what an archive export carries).
SELECT version, loaded_at, source, sha256, files, warnings
FROM registry_versions
ORDER BY version
