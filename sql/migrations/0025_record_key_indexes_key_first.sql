-- The record key's two indexes lead with the source's own key (source_key), not with the source (source_id):
-- person_xref's primary key becomes (source_key, source_id), source_record_key (source_key, source_id, run_id).
--
-- Why: both are probed by equality on the whole record key (the crosswalk row of a key, a key's earlier
-- statements: 20_duplicates, 50_statements, survivorship), never by source alone, so their order serves no query —
-- but it decides how fast they are built, and a full load builds both afresh (the bulk path drops them for the
-- load: pipelines/reconcile/merge.py). A btree build sorts its entries comparing an abbreviated key of the first
-- column only; with the source first (seven values) that decides nothing, and every comparison went on to the full
-- values of both columns. On a 1M-resident warehouse (1.9M entries each, 2026-12-04, a slow hour): the crosswalk's
-- key built in 9.1 s with the source first and 4.7 s with the key first; in the full load's restores, the
-- crosswalk's key 3.5 → 2.1 s, source_record_key 4.3 → 3.5 s.
--
-- Upgrading a warehouse rebuilds the five indexes of this migration once (readers of their tables wait meanwhile:
-- at 1M residents, about 15 s in all).
ALTER TABLE population.person_xref DROP CONSTRAINT person_xref_pkey;
ALTER TABLE population.person_xref ADD CONSTRAINT person_xref_pkey PRIMARY KEY (source_key, source_id);

DROP INDEX population.source_record_key;
CREATE INDEX source_record_key ON population.source_record (source_key, source_id, run_id);

-- Likewise the statements' key on (run, source, seq) becomes (run, seq, source): the same rows are unique, a lookup of
-- one staged row's statement (50_statements) probes it by all three, and the row accounting counts a run's statements
-- per source with one pass over the run's entries (90_accounting.sql) rather than a range per source. Built with
-- the seq (a number) before the source, its sort is decided by the numbers (the full load's restore 3.3 → 1.9 s).
ALTER TABLE population.source_record DROP CONSTRAINT source_record_run_id_source_id_seq_key;
ALTER TABLE population.source_record ADD CONSTRAINT source_record_run_seq_key UNIQUE (run_id, seq, source_id);

-- And for the same reason the persons' unique index on their document becomes (id_number, id_type) — the ID type
-- (three values) decided no comparison of its build — and the cells' key (population.resident_cell, migration 0018,
-- counted afresh and its key built again by every full load) leads with the birth date instead of the division
-- (about twenty values) and the sex (two). Both are probed by equality on every column (the match on ID; the
-- cells' upsert names the constraint) and scanned whole by the publication, never by a leading column alone.
-- In the full load's restores: the persons' index 1.8 → 0.9 s, the cells counted with their key 5.2 → 3.7 s.
DROP INDEX population.person_identity;
CREATE UNIQUE INDEX person_identity ON population.person (id_number, id_type) WHERE id_number IS NOT NULL;
ALTER TABLE population.resident_cell DROP CONSTRAINT resident_cell_key;
ALTER TABLE population.resident_cell ADD CONSTRAINT resident_cell_key UNIQUE NULLS NOT DISTINCT
    (birth_date, residence_division, sex, death_date, population_status, is_registered, nationality, id_type);
