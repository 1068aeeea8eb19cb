-- The quality gate of a daily increment validates the rows the run wrote (quality gate scope 'run'), not the whole
-- golden tables: these indexes find them (persons by updated_run_id, crosswalk rows by last_run_id) so that its
-- cost follows the size of the change. A full load (or an operator's QUALITY_GATE_SCOPE=table) validates every
-- row. validation_run.scope records which it was.
CREATE INDEX person_updated_run ON population.person (updated_run_id);
CREATE INDEX person_xref_last_run ON population.person_xref (last_run_id);

ALTER TABLE quality.validation_run ADD COLUMN scope text NOT NULL DEFAULT 'table'
    CHECK (scope IN ('table', 'run'));
COMMENT ON COLUMN quality.validation_run.scope IS
    '校验范围: table = 全表, run = 本批次写入的行 (person.updated_run_id / person_xref.last_run_id = run_id)';
