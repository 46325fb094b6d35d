SELECT DISTINCT district FROM {{facilities}}
WHERE district != '' AND province IN (${province:singlequote})
ORDER BY district
