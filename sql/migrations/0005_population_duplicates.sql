-- Rows of a run that are duplicates: superseded within the run (same source record key), or an unchanged
-- re-delivery of a record already merged by an earlier run. Counted apart so that the row accounting
-- received = merged + quarantined + duplicates is checked against three independent counts.
CREATE TABLE staging.population_duplicate (
    run_id          bigint NOT NULL REFERENCES audit.run,
    source_id       text   NOT NULL,
    seq             bigint NOT NULL,
    kind            text   NOT NULL CHECK (kind IN ('superseded_in_run', 'unchanged_redelivery')),
    duplicate_of    text   NOT NULL,
    PRIMARY KEY (run_id, source_id, seq)
);
COMMENT ON TABLE staging.population_duplicate IS '重复记录: rows collapsed into another (same key in the run, or unchanged since an earlier run)';
COMMENT ON COLUMN staging.population_duplicate.kind IS '重复类型 (superseded_in_run 同批次被覆盖, unchanged_redelivery 未变化的重复投递)';
COMMENT ON COLUMN staging.population_duplicate.duplicate_of IS '被保留的记录 (seq in this run, or source_record_id)';

CREATE INDEX source_record_evidence ON population.source_record (name, birth_date, sex) WHERE is_current;
CREATE INDEX source_record_key ON population.source_record (source_id, source_key, run_id);
COMMENT ON COLUMN population.source_record.row_hash IS '内容哈希 (md5 of the normalised attributes: unchanged re-deliveries are duplicates)';
