-- The roll-up of the monthly report: one row (facility_id, unit_id) for each unit a facility's
-- figures count in — the facility itself and every unit above it in the registry, up to the
-- report's unit — from the pairs bound as %(rollup)s (sinks/monthly.py builds them).
SELECT pair.1 AS facility_id, pair.2 AS unit_id
FROM (SELECT arrayJoin(%(rollup)s) AS pair)
