-- Staging partitioned by run: staging.population_record, population_checked and population_duplicate become
-- LIST-partitioned by run_id, one partition per population run (staging.<table>_r<run_id>), created with the run.
--
-- Why: every statement over staging reads one run (WHERE run_id = …), and every run needs statistics of its own rows
-- before its statements are planned (pipelines.population.validate.analyze_staging). On one table holding every run,
-- that ANALYZE sampled the whole table: 16 s for a 19,000-row daily run on a 4M-resident warehouse, whose staging
-- holds 8M rows and is no longer in memory. Per partition it reads the run's rows only, and a run's statements
-- are pruned to its partition whatever the statistics of other runs say. Old runs' staging can be dropped as a
-- whole partition (retention) instead of deleted row by row.
--
-- Partitions are attached, not created with CREATE TABLE … PARTITION OF: attaching takes SHARE UPDATE EXCLUSIVE on
-- the parent, which does not wait for another run's extract that is writing its own partition (PARTITION OF takes
-- ACCESS EXCLUSIVE and would). The foreign key to audit.run is not kept on staging: a partition only exists for a
-- population run (made by the trigger below when the run row is inserted), and the per-row check it made on every
-- COPYed row bought nothing more.

CREATE FUNCTION staging.ensure_run_partitions(p_run_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t    text;
    part text;
BEGIN
    FOREACH t IN ARRAY ARRAY['population_record', 'population_checked', 'population_duplicate'] LOOP
        part := t || '_r' || p_run_id;
        IF to_regclass(format('staging.%I', part)) IS NULL THEN
            EXECUTE format('CREATE TABLE staging.%I (LIKE staging.%I INCLUDING ALL)', part, t);
            EXECUTE format('ALTER TABLE staging.%I ATTACH PARTITION staging.%I FOR VALUES IN (%s)', t, part, p_run_id);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION staging.ensure_run_partitions(bigint) IS
    '建立运行的暂存分区 (staging.<table>_r<run_id>), idempotent; called by the trigger on audit.run';

DO $$
DECLARE
    t     text;
    old   text;
    note  text;
    r     bigint;
BEGIN
    FOREACH t IN ARRAY ARRAY['population_record', 'population_checked', 'population_duplicate'] LOOP
        old := t || '_unpartitioned';
        note := obj_description(format('staging.%I', t)::regclass, 'pg_class');
        EXECUTE format('ALTER TABLE staging.%I RENAME TO %I', t, old);
        EXECUTE format('ALTER TABLE staging.%I RENAME CONSTRAINT %I TO %I', old, t || '_pkey', old || '_pkey');
        EXECUTE format('CREATE TABLE staging.%I (LIKE staging.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                       ' INCLUDING COMMENTS INCLUDING STORAGE) PARTITION BY LIST (run_id)', t, old);
        EXECUTE format('ALTER TABLE staging.%I ADD PRIMARY KEY (run_id, source_id, seq)', t);
        EXECUTE format('COMMENT ON TABLE staging.%I IS %L', t,
                       coalesce(note || ' ', '') || '(分区: one partition per run, staging.' || t || '_r<run_id>)');
    END LOOP;
    FOR r IN
        SELECT run_id FROM audit.run WHERE pipeline = 'population'
        UNION SELECT run_id FROM staging.population_record_unpartitioned
        UNION SELECT run_id FROM staging.population_checked_unpartitioned
        UNION SELECT run_id FROM staging.population_duplicate_unpartitioned
    LOOP
        PERFORM staging.ensure_run_partitions(r);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['population_record', 'population_checked', 'population_duplicate'] LOOP
        EXECUTE format('INSERT INTO staging.%I SELECT * FROM staging.%I', t, t || '_unpartitioned');
        EXECUTE format('DROP TABLE staging.%I', t || '_unpartitioned');
    END LOOP;
END
$$;

CREATE FUNCTION staging.run_partitions_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM staging.ensure_run_partitions(NEW.run_id);
    RETURN NULL;
END
$$;
-- on a new run, and on a run opened again (an old run whose staging was dropped gets its partitions back)
CREATE TRIGGER run_staging_partitions AFTER INSERT OR UPDATE OF attempts ON audit.run
FOR EACH ROW WHEN (NEW.pipeline = 'population') EXECUTE FUNCTION staging.run_partitions_trigger();
