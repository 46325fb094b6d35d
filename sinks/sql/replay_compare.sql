-- Every (key, column) whose live ({live}) and replayed ({replayed}) rows differ: the rows
-- are joined on their key columns ({keys}; {key_json}: the same as JSON texts), and
-- {checks} is one tuple(column, live, replayed, differs) per column plus one for a row
-- present on one side only.
SELECT [{key_json}] AS key, d.1 AS column, d.2 AS live, d.3 AS replayed,
       count() OVER () AS total
FROM (SELECT *, toUInt8(1) AS _in FROM ({live})) AS l
FULL OUTER JOIN (SELECT *, toUInt8(1) AS _in FROM ({replayed})) AS r
    USING ({keys})
ARRAY JOIN arrayFilter(x -> x.4, [{checks}]) AS d
ORDER BY key, column
LIMIT %(limit)s
SETTINGS join_use_nulls = 0, output_format_json_quote_64bit_integers = 0
