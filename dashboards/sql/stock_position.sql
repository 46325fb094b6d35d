-- Stock per facility and item at T, exactly as `ostwatch report stock` answers it: the
-- report's own SQL (sinks/sql/report_stock.sql), then average daily use over the 14 local days ending
-- with T's day (from the facility's first use), days of supply and the projected stock-out.
SELECT
    s.facility_id AS facility_id,
    concat(f.name, ' (', s.facility_id, ')') AS facility,
    s.item AS item,
    i.unit AS unit,
    round(s.on_hand, 1) AS on_hand,
    round(s.avg_use, 2) AS avg_daily_use,
    if(s.avg_use > 0, round(s.on_hand / s.avg_use, 1), NULL) AS days_of_supply,
    if(s.avg_use > 0, {{t_day}} + toIntervalDay(floor(greatest(days_of_supply, 0))), NULL)
        AS stockout_date,
    multiIf(
        s.on_hand <= 0, 'critical',
        days_of_supply < {{critical_days}}, 'critical',
        days_of_supply < {{warning_days}}, 'warning',
        'ok'
    ) AS status
FROM (
    SELECT
        *,
        if(
            first_use IS NULL,
            0.,
            used_in_window
                / greatest(dateDiff('day', greatest(first_use, {{t_day}} - 13), {{t_day}}) + 1, 1)
        ) AS avg_use
    FROM ({{stock_report}})
) AS s
LEFT JOIN {{facilities}} AS f ON f.facility_id = s.facility_id
LEFT JOIN {{items}} AS i ON i.item = s.item
ORDER BY days_of_supply ASC NULLS LAST, s.facility_id, s.item
