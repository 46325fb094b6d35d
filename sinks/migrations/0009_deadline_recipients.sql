-- The wider reporting calendar (issue 17): deadlines.csv may name the unit that receives a
-- report (recipient_id, a facility id of the registry; empty when the file does not say).
-- Quarterly deadlines need no change here: frequency is already free text.

ALTER TABLE registry_deadlines
    ADD COLUMN IF NOT EXISTS recipient_id String DEFAULT ''
    COMMENT 'facility id of the unit that receives the report; empty when not given';
