-- The monthly report's tests (CONTRACT §6) per facility and purpose (sinks/monthly.py rolls
-- them up to every unit above and keeps the substances with a positive), from the period's
-- tests in the archive up to the cut-off ({before_cut}).
SELECT
    facility_id,
    toString(purpose) AS purpose,
    count() AS tests,
    sumMap(
        mapApply((substance, result) -> (substance, toUInt64(result = 'positive')), results)
    ) AS positive
FROM events_archive
WHERE event_type = 'test.performed'
    AND local_date >= %(first_day)s AND local_date <= %(cut_day)s
    AND {before_cut} AND ({where})
GROUP BY facility_id, purpose
