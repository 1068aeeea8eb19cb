-- population.resident_cell: the golden persons counted per combination of the attributes the daily statistics
-- read (district of residence, sex, birth and death date, status, 户籍, nationality, document type), kept equal to
-- `SELECT …, count(*) FROM population.person GROUP BY …` by statement-level triggers on population.person, in the
-- transaction that changes the persons.
--
-- Why: a daily open dataset (datasets/population/*.sql) is a statistic over every resident; computed from the
-- golden table, each release scanned all of it, so publishing a day's increment cost the size of the database
-- (4.5 s after an increment at 1M residents, 12.1 s at 4M). The cells are bounded by the attributes' domains, not
-- by the population (16 districts x 2 sexes x ~36,500 birth dates x …), they are a few dozen bytes each, and a day
-- changes only the cells of the persons it changed. docs/scaling.md, docs/publication.md.
--
-- The triggers see every writer of population.person (the reconciliation, tests, a repair by hand); a full load
-- (pipelines/reconcile/merge.py, bulk path) disables them for its one big INSERT and counts the cells afresh with
-- one GROUP BY instead (resident_cell_rebuild), which is cheaper than collecting a million rows in a transition
-- table.
CREATE TABLE population.resident_cell (
    residence_division text,
    sex                text,
    birth_date         date,
    death_date         date,
    population_status  text,
    is_registered      boolean,
    nationality        text,
    id_type            text,
    persons            bigint NOT NULL,  -- (no CHECK >= 0: an upsert's proposed row carries the negative delta;
                                         --  the triggers refuse a negative count after it instead)
    CONSTRAINT resident_cell_key UNIQUE NULLS NOT DISTINCT
        (residence_division, sex, birth_date, death_date, population_status, is_registered, nationality, id_type)
);
-- cells whose last person left (deleted after each change) or counted below zero (an error): found without a scan
CREATE INDEX resident_cell_empty ON population.resident_cell ((1)) WHERE persons <= 0;
COMMENT ON TABLE population.resident_cell IS
    '实有人口统计单元: persons per (residence_division, sex, birth_date, death_date, population_status, '
    'is_registered, nationality, id_type), maintained from population.person by triggers (migration 0018)';

-- Apply a statement's change: the rows it removed counted out, the rows it added counted in, per cell, in one
-- upsert; then the cells left empty are deleted. One function for the three operations: the query names the
-- transition tables the operation has (a DELETE has no new rows), so it is run by EXECUTE.
CREATE FUNCTION population.resident_cell_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cell constant text := 'residence_division, sex, birth_date, death_date, population_status, is_registered, '
                          'nationality, id_type';
    changes text := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT %s, 1 AS d FROM new_rows', cell)
        WHEN 'DELETE' THEN format('SELECT %s, -1 AS d FROM old_rows', cell)
        ELSE format('SELECT %1$s, -1 AS d FROM old_rows UNION ALL SELECT %1$s, 1 FROM new_rows', cell) END;
BEGIN
    EXECUTE format(
        'INSERT INTO population.resident_cell AS c (%1$s, persons) '
        'SELECT %1$s, sum(d) FROM (%2$s) x GROUP BY %1$s '
        'HAVING sum(d) <> 0 '  -- (an update of other columns, e.g. the lineage pointers, changes no cell)
        'ON CONFLICT ON CONSTRAINT resident_cell_key DO UPDATE SET persons = c.persons + EXCLUDED.persons',
        cell, changes);
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM population.resident_cell WHERE persons = 0;
        IF EXISTS (SELECT 1 FROM population.resident_cell WHERE persons < 0) THEN
            RAISE EXCEPTION 'population.resident_cell counted below zero: it no longer matches population.person'
                USING HINT = 'SELECT population.resident_cell_rebuild() counts the cells afresh';
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION population.resident_cell_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM population.resident_cell;
    RETURN NULL;
END $$;

CREATE TRIGGER resident_cell_insert AFTER INSERT ON population.person
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION population.resident_cell_apply();
CREATE TRIGGER resident_cell_update AFTER UPDATE ON population.person
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION population.resident_cell_apply();
CREATE TRIGGER resident_cell_delete AFTER DELETE ON population.person
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION population.resident_cell_apply();
CREATE TRIGGER resident_cell_truncate AFTER TRUNCATE ON population.person
    FOR EACH STATEMENT EXECUTE FUNCTION population.resident_cell_truncate();

-- Count the cells afresh from the persons (a full load, after its triggers were off; and here, for a warehouse
-- that already holds persons). The key's index is dropped and built again after the insert: inserting 700k cells
-- through an eight-column unique index took 7.2 s at 1M residents, the insert and the index build 3.3 s. The
-- table is locked until the transaction ends (a full load's transaction locks the persons' indexes likewise).
CREATE FUNCTION population.resident_cell_rebuild() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    key_definition text;
    cells bigint;
BEGIN
    SELECT pg_get_constraintdef(oid) INTO STRICT key_definition FROM pg_constraint
    WHERE conrelid = 'population.resident_cell'::regclass AND conname = 'resident_cell_key';
    DELETE FROM population.resident_cell;
    ALTER TABLE population.resident_cell DROP CONSTRAINT resident_cell_key;
    INSERT INTO population.resident_cell (residence_division, sex, birth_date, death_date, population_status,
                                          is_registered, nationality, id_type, persons)
    SELECT residence_division, sex, birth_date, death_date, population_status, is_registered, nationality, id_type,
           count(*)
    FROM population.person
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    GET DIAGNOSTICS cells = ROW_COUNT;
    EXECUTE 'ALTER TABLE population.resident_cell ADD CONSTRAINT resident_cell_key ' || key_definition;
    RETURN cells;
END $$;
SELECT population.resident_cell_rebuild();
