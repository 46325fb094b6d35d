SELECT DISTINCT province FROM {{facilities}} WHERE province != '' ORDER BY province
