-- Late events: arrival at the worker minus occurrence at the source, per facility.
SELECT
    facility_id,
    count() AS events,
    countIf(dateDiff('second', occurred_at, received_at) > 3600) AS late_over_1h,
    round(quantile(0.5)(dateDiff('second', occurred_at, received_at)) / 3600, 1) AS median_delay_h,
    round(max(dateDiff('second', occurred_at, received_at)) / 3600, 1) AS max_delay_h
FROM events_archive
WHERE $__timeFilter(occurred_at) AND facility_id IN ({{facility_scope}})
GROUP BY facility_id
ORDER BY max_delay_h DESC, facility_id
