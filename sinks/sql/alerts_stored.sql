-- Stored alerts ({columns}) matching {where}, the newest version of each after FINAL.
SELECT {columns} FROM alerts FINAL WHERE {where}
