SELECT facility_id FROM {{facilities}}
WHERE province IN (${province:singlequote}) AND (district IN (${district:singlequote}) OR district = '')
ORDER BY facility_id
