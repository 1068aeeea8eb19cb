-- A daily run's SCD2 update of its changed persons (about 13k of them, 1% of the change) rewrote each on another
-- page: person.updated_run_id, which that UPDATE sets on every row it changes, was indexed (person_updated_run,
-- migration 0012, for the quality gate's scope 'run'), and a pages full to the brim (fillfactor 100) had no room
-- for the new version beside the old one anyway. So no update was HOT: each wrote its new version at the table's
-- free space, an entry into each of the four indexes (three of them at random leaves: the key, the evidence, the ID
-- number) and, after a checkpoint, the whole page of each into the WAL — five or so pages a person, spread over
-- four times as many pages on a warehouse four times the size, which is where a 4M warehouse's daily run spent
-- most of what it spent beyond a 1M one's on the same change (the UPDATE 0.6 s at 1M, 1.2 s at 4M).
--
-- Now the gate finds the persons a run wrote through their history (expectations/population.person.json,
-- meta.run_keys): every write of a person's values appends a version to population.person_history, carrying the
-- same updated_run_id, and a version's run never changes after it is written, so the index on it is appended to
-- at its right end only. The persons' and the history's pages keep a tenth free for updates in place: a changed
-- person's new version (and the close of its history's current version: valid_to, not indexed since 0026) goes
-- on the page it was on, with no index entry at all.
CREATE INDEX person_history_run ON population.person_history (updated_run_id);
DROP INDEX IF EXISTS population.person_updated_run;
ALTER TABLE population.person SET (fillfactor = 90);
ALTER TABLE population.person_history SET (fillfactor = 90);

-- an unfinished partitioned load (population.bulk_load, migration 0023) would build the dropped index again when
-- undone; the history's new index exists (built above), so there is nothing of it to restore
UPDATE population.bulk_load
SET restore = array(SELECT s FROM unnest(restore) WITH ORDINALITY AS r(s, i)
                    WHERE s NOT LIKE '%person_updated_run%' ORDER BY i)
WHERE EXISTS (SELECT 1 FROM unnest(restore) s WHERE s LIKE '%person_updated_run%');

COMMENT ON COLUMN quality.validation_run.scope IS
    '校验范围: table = 全表, run = 本批次写入的行 (person: person_history.updated_run_id = run_id 的人员; '
    'person_xref.last_run_id = run_id)';
