-- Transfers between facilities in the time range.
SELECT facility_id AS from_facility, toString(to_facility_id) AS to_facility, count() AS transfers
FROM events_archive
WHERE event_type = 'patient.transferred' AND $__timeFilter(occurred_at)
    AND (facility_id IN ({{facility_scope}}) OR to_facility_id IN ({{facility_scope}}))
GROUP BY from_facility, to_facility
ORDER BY transfers DESC, from_facility, to_facility
