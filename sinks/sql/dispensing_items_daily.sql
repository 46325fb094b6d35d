-- Dispensing per facility, item and local day (migration 0010), from the archive rows
-- matching {where}: the day's doses and, as a sorted set of 128-bit SipHash values of their
-- patient_refs, the patients dosed (sorted, so that the same events always give the same row).
SELECT
    facility_id,
    item,
    local_date,
    count() AS events,
    arraySort(groupUniqArray(reinterpretAsUInt128(sipHash128(patient_ref)))) AS patients,
    {dose_figures}
FROM events_archive
WHERE event_type = 'dose.dispensed' AND ({where})
GROUP BY facility_id, item, local_date
