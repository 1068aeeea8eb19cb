-- staging.population_record.plain: set by the source adapter when the received row holds no character that text
-- normalisation could change (pipelines.sources.records.is_plain: no whitespace, nothing JSON escapes, nothing of
-- the Latin-1 supplement nor of U+1000–U+3FFF and U+F000–U+FFFF — the Unicode spaces, the ideographic space, the
-- full-width forms), so that each of its fields normalises to itself, an empty one to NULL. NULL: not known (a row
-- staged by other means or by an older version, a payload with other than text values): normalised in full.
--
-- Why: the candidates' normalisation tested every field of every staged row with norm_text's regular expression
-- (migration 0010's fast path, 0.19 µs a value, the call itself rather than the characters), about 20 million
-- times at 1M residents — 3.4 of the candidates' 13 CPU s on one core — to find the 1–2 % of rows that need it. The
-- extract tells them apart from the bytes it has already encoded (bytes.translate: 0.25 µs a row).
--
-- The two-argument functions give exactly what the one-argument ones give whenever ``plain`` is true of the value
-- (tests/integration/test_normalisation_sql.py); the code tables of the statuses are written once, in the *_code
-- functions, which the one-argument functions now call on their normalised argument (same results as before: each
-- normalises its argument once and looks it up).
ALTER TABLE staging.population_record ADD COLUMN plain boolean;
COMMENT ON COLUMN staging.population_record.plain IS
    '无需规范化: true when no field of the row holds whitespace or a full-width character (each normalises to itself); NULL = not known';

CREATE FUNCTION population.norm_text(t text, plain boolean) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN plain THEN nullif(t, '') ELSE population.norm_text(t) END
$$;
COMMENT ON FUNCTION population.norm_text(text, boolean) IS
    '文本规范化 (plain = 已知无需规范化: only empty -> NULL), else norm_text(t)';

CREATE FUNCTION population.norm_name(t text, plain boolean) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN plain THEN CASE WHEN t ~ '[\u4e00-\u9fff]' THEN nullif(t, '') ELSE upper(nullif(t, '')) END
                ELSE population.norm_name(t) END
$$;
COMMENT ON FUNCTION population.norm_name(text, boolean) IS '姓名规范化 (plain: see norm_text(text, boolean))';

-- the code tables, over a normalised value
CREATE FUNCTION population.population_status_code(status text, event_type text, death_date date) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE upper(status)
        WHEN '死亡' THEN 'deceased' WHEN 'DECEASED' THEN 'deceased' WHEN 'DEAD' THEN 'deceased'
        WHEN '2' THEN 'deceased' WHEN '注销(死亡)' THEN 'deceased'
        WHEN '迁出' THEN 'moved_out' WHEN 'MOVED_OUT' THEN 'moved_out' WHEN '3' THEN 'moved_out'
        WHEN '注销(迁出)' THEN 'moved_out'
        WHEN '正常' THEN 'active' WHEN 'ACTIVE' THEN 'active' WHEN '1' THEN 'active' WHEN '在册' THEN 'active'
        ELSE CASE WHEN upper(event_type) IN ('DEATH', '死亡') AND death_date IS NOT NULL THEN 'deceased' END
    END
$$;
COMMENT ON FUNCTION population.population_status_code(text, text, date) IS
    '人口状态代码 of a normalised status (and event type, death date)';

CREATE FUNCTION population.marital_status_code(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE upper(t)
        WHEN '未婚' THEN '10' WHEN '10' THEN '10' WHEN 'SINGLE' THEN '10'
        WHEN '已婚' THEN '20' WHEN '结婚' THEN '20' WHEN '初婚' THEN '20' WHEN '再婚' THEN '20' WHEN '复婚' THEN '20'
        WHEN '20' THEN '20' WHEN 'MARRIED' THEN '20'
        WHEN '丧偶' THEN '30' WHEN '30' THEN '30' WHEN 'WIDOWED' THEN '30'
        WHEN '离婚' THEN '40' WHEN '40' THEN '40' WHEN 'DIVORCED' THEN '40'
        ELSE NULL END
$$;
COMMENT ON FUNCTION population.marital_status_code(text) IS '婚姻状况代码 (GB/T 2261.2) of a normalised value';

CREATE OR REPLACE FUNCTION population.norm_population_status(status text, event_type text, death_date date)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT population.population_status_code(population.norm_text(status), population.norm_text(event_type), death_date)
$$;

CREATE FUNCTION population.norm_population_status(status text, event_type text, death_date date, plain boolean)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT population.population_status_code(population.norm_text(status, plain),
                                             population.norm_text(event_type, plain), death_date)
$$;

CREATE OR REPLACE FUNCTION population.norm_marital_status(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT population.marital_status_code(population.norm_text(t))
$$;

CREATE FUNCTION population.norm_marital_status(t text, plain boolean) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT population.marital_status_code(population.norm_text(t, plain))
$$;
