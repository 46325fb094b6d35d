-- The newest registry version with its files verbatim and their digest.
SELECT version, files, sha256 FROM registry_versions ORDER BY version DESC LIMIT 1
