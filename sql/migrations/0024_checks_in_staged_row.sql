-- The identifier and record checks of a staged row are written into the staged row itself (columns checked_* and
-- reasons, warnings of staging.population_record), by the same COPY that stages it, instead of into a table beside
-- it (staging.population_checked, dropped here).
--
-- Why: the extract wrote every row twice — the row, then its checks by a second COPY into a second table with a
-- primary key of its own — and every later step that needed both (the quarantine, the reconciliation's
-- candidates) joined the two tables of the run's size back together on (run_id, source_id, seq). At 1M residents
-- the warehouse's backends spent about three times the plain COPY's work per staged row in the extract; one row
-- and one key per staged row removes the second table's insert, its key, its statistics and both joins.
--
-- reasons IS NULL marks a row staged without its checks (by other means, or before this version):
-- pipelines.population.validate.validate_run checks those rows and writes their checks into them; a partial index
-- finds them without reading the run's rows (it holds no entry when every row was checked as it was staged), and
-- another the rejected rows for the quarantine (a few percent of the rows: a scan of the run's wide staged rows
-- for them took 3.5 s at 1M residents).
-- id_birth_date, id_sex and id_division of the old table are not kept: nothing read them, and an accepted 公民身份
-- 号码 (checked_id_number) holds all three.

ALTER TABLE staging.population_record
    ADD COLUMN checked_id_type     text,
    ADD COLUMN checked_id_number   text,
    ADD COLUMN checked_sex         text,
    ADD COLUMN checked_birth_date  date,
    ADD COLUMN checked_death_date  date,
    ADD COLUMN checked_event_date  date,
    ADD COLUMN reasons             text[],
    ADD COLUMN warnings            text[];

COMMENT ON COLUMN staging.population_record.checked_id_type IS '证件类型 (规范化: RIC / PASSPORT / PRP)';
COMMENT ON COLUMN staging.population_record.checked_id_number IS '证件号码 (规范化; NULL when the number itself is rejected)';
COMMENT ON COLUMN staging.population_record.checked_sex IS '性别 (规范化 1/2/9, from the RIC when not declared)';
COMMENT ON COLUMN staging.population_record.checked_birth_date IS '出生日期 (规范化, from the RIC when not declared)';
COMMENT ON COLUMN staging.population_record.checked_death_date IS '死亡日期 (规范化)';
COMMENT ON COLUMN staging.population_record.checked_event_date IS '业务发生日期 (规范化)';
COMMENT ON COLUMN staging.population_record.reasons IS
    '拒收原因 (reject reason codes, pipelines/reasons.py; {} = accepted; NULL = not checked yet)';
COMMENT ON COLUMN staging.population_record.warnings IS '警告 (warning codes; the row is accepted)';

-- the checks an earlier version wrote beside the staged rows of runs not yet reconciled
UPDATE staging.population_record s
   SET checked_id_type = c.id_type, checked_id_number = c.id_number, checked_sex = c.sex,
       checked_birth_date = c.birth_date, checked_death_date = c.death_date, checked_event_date = c.event_date,
       reasons = c.reasons, warnings = c.warnings
  FROM staging.population_checked c
 WHERE c.run_id = s.run_id AND c.source_id = s.source_id AND c.seq = s.seq;

CREATE INDEX population_record_unchecked ON staging.population_record (run_id, source_id) WHERE reasons IS NULL;
CREATE INDEX population_record_rejected ON staging.population_record (run_id, source_id, seq) WHERE reasons <> '{}';

DROP TABLE staging.population_checked;  -- (and its partitions)

CREATE OR REPLACE FUNCTION staging.ensure_run_partitions(p_run_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t    text;
    part text;
BEGIN
    FOREACH t IN ARRAY ARRAY['population_record', 'population_duplicate'] LOOP
        part := t || '_r' || p_run_id;
        IF to_regclass(format('staging.%I', part)) IS NULL THEN
            EXECUTE format('CREATE TABLE staging.%I (LIKE staging.%I INCLUDING ALL)', part, t);
            EXECUTE format('ALTER TABLE staging.%I ATTACH PARTITION staging.%I FOR VALUES IN (%s)', t, part, p_run_id);
        END IF;
    END LOOP;
END
$$;
