-- Today's dosing (the local day of T) per treatment facility: patients dosed there and at its
-- dispensing points against its active patients (patients are counted where enrolled).
WITH
    standing AS ({{patients}}),
    home AS (
        SELECT facility_id, if(type = 'dispensing_point' AND parent_id != '', parent_id, facility_id) AS unit
        FROM {{facilities}}
    ),
    dosed AS (
        SELECT h.unit AS unit, sum(d.patients_dosed) AS dosed_today
        FROM dispensing_daily AS d FINAL
        INNER JOIN home AS h ON h.facility_id = d.facility_id
        WHERE d.local_date = {{t_day}}
        GROUP BY h.unit
    ),
    active AS (
        SELECT facility_id AS unit, sum(active) AS active_patients
        FROM standing
        WHERE programme IN ('methadone', 'buprenorphine')
        GROUP BY facility_id
    )
SELECT
    f.facility_id AS facility_id,
    concat(f.name, ' (', f.facility_id, ')') AS facility,
    toInt64(ifNull(d.dosed_today, 0)) AS dosed_today,
    toInt64(ifNull(a.active_patients, 0)) AS active_patients,
    if(active_patients > 0, round(100 * dosed_today / active_patients, 1), NULL) AS progress_pct
FROM {{facilities}} AS f
LEFT JOIN dosed AS d ON d.unit = f.facility_id
LEFT JOIN active AS a ON a.unit = f.facility_id
WHERE (dosed_today > 0 OR active_patients > 0) AND f.facility_id IN ({{facility_scope}})
ORDER BY progress_pct ASC NULLS LAST, f.facility_id
