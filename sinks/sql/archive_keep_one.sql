-- Keep one row of each repeated event_id, through a scratch table ({keep}): copy one of
-- each, delete all of them from the archive, put the copies back, drop the scratch table.

-- name: create
CREATE TABLE {keep} AS events_archive ENGINE = Memory

-- name: copy
INSERT INTO {keep}
SELECT * FROM events_archive
WHERE event_id IN (SELECT event_id FROM events_archive GROUP BY event_id HAVING count() > 1)
LIMIT 1 BY event_id

-- name: delete
ALTER TABLE events_archive DELETE WHERE event_id IN (SELECT event_id FROM {keep})
SETTINGS mutations_sync = 2

-- name: restore
INSERT INTO events_archive SELECT * FROM {keep}

-- name: drop
DROP TABLE IF EXISTS {keep}
