-- Text normalisation used by the set-based transforms: full-width to half-width, whitespace squashed,
-- empty to NULL; names written in Chinese characters lose their spaces ('张 三' is '张三').
CREATE FUNCTION population.norm_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT nullif(btrim(regexp_replace(translate(t, '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～　', '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~ '), '\s+', ' ', 'g')), '')
$$;
COMMENT ON FUNCTION population.norm_text(text) IS '文本规范化: 全角转半角, 合并空白, 空串为NULL';

CREATE FUNCTION population.norm_name(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN population.norm_text(t) ~ '[\u4e00-\u9fff]'
                THEN replace(population.norm_text(t), ' ', '')
                ELSE upper(population.norm_text(t)) END
$$;
COMMENT ON FUNCTION population.norm_name(text) IS '姓名规范化: 中文姓名去空格, 外文姓名大写';

-- Coded values: the departments' spellings to our codes (docs/data-model.md lists them).
CREATE FUNCTION population.norm_population_status(status text, event_type text, death_date date) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN upper(population.norm_text(status)) IN ('死亡', 'DECEASED', 'DEAD', '2', '注销(死亡)') THEN 'deceased'
        WHEN upper(population.norm_text(status)) IN ('迁出', 'MOVED_OUT', '3', '注销(迁出)') THEN 'moved_out'
        WHEN upper(population.norm_text(status)) IN ('正常', 'ACTIVE', '1', '在册') THEN 'active'
        WHEN upper(population.norm_text(event_type)) IN ('DEATH', '死亡') AND death_date IS NOT NULL THEN 'deceased'
        ELSE NULL END
$$;
CREATE FUNCTION population.norm_marital_status(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE upper(population.norm_text(t))
        WHEN '未婚' THEN '10' WHEN '10' THEN '10' WHEN 'SINGLE' THEN '10'
        WHEN '已婚' THEN '20' WHEN '结婚' THEN '20' WHEN '初婚' THEN '20' WHEN '再婚' THEN '20' WHEN '复婚' THEN '20'
        WHEN '20' THEN '20' WHEN 'MARRIED' THEN '20'
        WHEN '丧偶' THEN '30' WHEN '30' THEN '30' WHEN 'WIDOWED' THEN '30'
        WHEN '离婚' THEN '40' WHEN '40' THEN '40' WHEN 'DIVORCED' THEN '40'
        ELSE NULL END
$$;
