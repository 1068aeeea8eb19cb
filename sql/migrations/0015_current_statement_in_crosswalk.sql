-- The current statement of each record key is named by the crosswalk, not flagged on the statements.
--
-- Until now population.source_record.is_current marked the latest statement of each (source_id, source_key), and a
-- run that brought a newer statement of a key UPDATEd the older one to is_current = false. Statements are
-- otherwise never changed, but that UPDATE could not be HOT (is_current is in the predicates of four partial
-- indexes) and so wrote a new row version and an entry in every index of the table: on a 4M-resident warehouse
-- whose indexes were not in memory, 15 s for the 10,000 keys a day changes, the largest part of a daily run.
-- The crosswalk already holds one row per record key and is rewritten for every key a run brings (its person, its
-- last run), so it now also names the key's current statement and the order fields a newer statement is compared
-- with: statements become append-only, and "the latest recorded statement of a key" (duplicates, statements) is
-- one primary-key probe of the crosswalk instead of a scan of the key's statements.
--
-- Indexes of source_record: source_record_current (one current statement per key: now the crosswalk's primary
-- key) and source_record_superseded (person_id of non-current statements) go; source_record_person covers every
-- statement (a person's current statements are found through the crosswalk: person_xref_person, then the
-- statement by id). source_record_evidence goes too: records without an ID are matched on evidence against the
-- golden persons (index person_evidence, which was there already) instead of every department's statements, so
-- a statement written costs one index entry fewer.

ALTER TABLE population.person_xref
    ADD COLUMN current_record_id  bigint,
    ADD COLUMN current_updated_at timestamptz,
    ADD COLUMN current_run_id     bigint,
    ADD COLUMN current_seq        bigint,
    ADD COLUMN current_row_hash   text;

UPDATE population.person_xref x
SET current_record_id = sr.source_record_id, current_updated_at = sr.source_updated_at,
    current_run_id = sr.run_id, current_seq = sr.seq, current_row_hash = sr.row_hash
FROM population.source_record sr
WHERE sr.is_current AND sr.source_id = x.source_id AND sr.source_key = x.source_key;

ALTER TABLE population.person_xref
    ALTER COLUMN current_record_id SET NOT NULL,
    ALTER COLUMN current_updated_at SET NOT NULL,
    ALTER COLUMN current_run_id SET NOT NULL,
    ALTER COLUMN current_seq SET NOT NULL,
    ALTER COLUMN current_row_hash SET NOT NULL;

COMMENT ON COLUMN population.person_xref.current_record_id IS
    '当前源记录 (population.source_record: the latest statement of the key, by source update time, run, seq)';
COMMENT ON COLUMN population.person_xref.current_updated_at IS '当前源记录的更新时间';
COMMENT ON COLUMN population.person_xref.current_run_id IS '当前源记录的运行';
COMMENT ON COLUMN population.person_xref.current_seq IS '当前源记录的抽取序号';
COMMENT ON COLUMN population.person_xref.current_row_hash IS '当前源记录的内容哈希 (unchanged re-deliveries)';

DROP INDEX population.source_record_current;
DROP INDEX population.source_record_superseded;
DROP INDEX population.source_record_person;
DROP INDEX population.source_record_evidence;
ALTER TABLE population.source_record DROP COLUMN is_current;
CREATE INDEX source_record_person ON population.source_record (person_id);
COMMENT ON TABLE population.source_record IS
    '源记录: every accepted statement of a department about a person, normalised, append-only; the current one of '
    'each record key is named by population.person_xref.current_record_id';
