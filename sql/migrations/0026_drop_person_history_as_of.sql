-- population.person_history_as_of (person_id, valid_from, valid_to) goes: nothing reads it. A person's versions are
-- found by the primary key (person_id, version) — survivorship's closing UPDATE and the API's history both probe one
-- person, a handful of rows — and population.person_as_of() reads every person, a sequential scan (measured on a
-- 1M-resident warehouse after a full load and an increment: pg_stat_user_indexes.idx_scan 0 for it, 13,054 for the
-- primary key). Yet every version written (a million on a first load) made an entry in it, and its column valid_to
-- made every version's close (UPDATE … SET valid_to) a non-HOT update. A first load rebuilt it after the load: 0.9 s
-- of one core at 1M.
DROP INDEX IF EXISTS population.person_history_as_of;

-- an unfinished partitioned load (population.bulk_load, migration 0023) would build it again when undone
UPDATE population.bulk_load
SET restore = array(SELECT s FROM unnest(restore) WITH ORDINALITY AS r(s, i)
                    WHERE s NOT LIKE '%person_history_as_of%' ORDER BY i)
WHERE EXISTS (SELECT 1 FROM unnest(restore) s WHERE s LIKE '%person_history_as_of%');
