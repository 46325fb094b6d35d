-- Patient events as the judge reads them ({columns}) from {table} (the index, or the archive
-- for tests of no patient), matching {where}.
SELECT {columns} FROM {table} WHERE {where}
