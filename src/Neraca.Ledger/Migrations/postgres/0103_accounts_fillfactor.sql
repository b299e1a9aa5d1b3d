-- Every posting rewrites its accounts' balances in place. Free space on each page lets PostgreSQL store the new row
-- version on the same page as a heap-only tuple, so the update adds no entries to the accounts indexes. Applies to
-- pages written from now on (VACUUM FULL accounts rewrites existing ones, under an exclusive lock).
ALTER TABLE accounts SET (fillfactor = 80);
