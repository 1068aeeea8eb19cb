-- The universes of the published population tables, defined once. Three datasets share the universe
-- resident_population (datasets/population/*.yaml): their tables are margins of one another, and the suppression
-- of each assumes the totals the others publish are those of the same persons (pipelines/publish/suppression.py).
-- Written out in each query, the clauses could drift apart unnoticed (a comment asked to keep them identical);
-- now each query calls these functions. Both are single-expression SQL functions, IMMUTABLE and not STRICT, so the
-- planner inlines them into the query (tests/integration/test_publish.py checks the plans name no function): the
-- same plan and estimates as the clauses written out.

-- alive and not moved out on as_of (the foreign residents' table too)
CREATE FUNCTION population.is_present_on(death_date date, population_status text, as_of date) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (death_date IS NULL OR death_date > as_of)
       AND population_status IS DISTINCT FROM 'deceased'
       AND population_status IS DISTINCT FROM 'moved_out'
$$;
COMMENT ON FUNCTION population.is_present_on(date, text, date) IS
    '在册: 未死亡、未迁出 (as of a date); the foreign residents'' universe and part of the resident one';

-- the universe resident_population: present on as_of, sex 1/2, born by as_of (the residence division's district
-- is the query's join with publish_work.district_map)
CREATE FUNCTION population.is_resident_on(death_date date, population_status text, sex text, birth_date date,
                                          as_of date) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT population.is_present_on(death_date, population_status, as_of)
       AND sex IN ('1', '2')
       AND birth_date <= as_of
$$;
COMMENT ON FUNCTION population.is_resident_on(date, text, text, date, date) IS
    '实有人口 universe of the published resident tables: present, sex 1/2, born by the date';
