-- Tests per facility and local day, with positive results per substance, from the archive
-- rows matching {where}.
SELECT
    facility_id,
    local_date,
    count() AS events,
    count() AS tests,
    mapFilter(
        (substance, n) -> n > 0,
        sumMap(mapApply((substance, result) -> (substance, toUInt64(result = 'positive')), results))
    ) AS positive
FROM events_archive
WHERE event_type = 'test.performed' AND ({where})
GROUP BY facility_id, local_date
