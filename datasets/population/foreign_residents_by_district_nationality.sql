-- 境外人员分区国籍统计: one row per (district, nationality group), the full grid. Foreign residents: a foreign
-- passport or permanent-residence card, or a nationality other than CHN; alive and not moved out on %(as_of)s.
WITH foreigner AS (
    SELECT d.district_code,
           CASE WHEN p.nationality IN ('JPN', 'KOR', 'USA') THEN p.nationality
                WHEN p.nationality IN ('ALB', 'AND', 'AUT', 'BEL', 'BGR', 'BIH', 'BLR', 'CHE', 'CYP', 'CZE', 'DEU',
                                       'DNK', 'ESP', 'EST', 'FIN', 'FRA', 'GBR', 'GRC', 'HRV', 'HUN', 'IRL', 'ISL',
                                       'ITA', 'LIE', 'LTU', 'LUX', 'LVA', 'MCO', 'MDA', 'MKD', 'MLT', 'MNE', 'NLD',
                                       'NOR', 'POL', 'PRT', 'ROU', 'RUS', 'SMR', 'SRB', 'SVK', 'SVN', 'SWE', 'UKR',
                                       'VAT') THEN 'EUR'
                ELSE 'OTH' END AS nationality_group,
           sum(p.persons) AS population
    FROM population.resident_cell p
    JOIN publish_work.district_map d ON d.division_code = p.residence_division
    WHERE (p.id_type IN ('PASSPORT', 'PRP') OR (p.nationality IS NOT NULL AND p.nationality <> 'CHN'))
      AND population.is_present_on(p.death_date, p.population_status, %(as_of)s::date)
    GROUP BY 1, 2  -- summed from population.resident_cell, then set on the grid (see population_by_district_sex_age.sql)
),
grid AS (
    SELECT d.district_code, d.district_name, d.sort_order, n.nationality_group, n.nationality_group_label, n.ord
    FROM publish_work.district_map d
    CROSS JOIN (VALUES ('JPN', '日本', 1), ('KOR', '韩国', 2), ('USA', '美国', 3), ('EUR', '欧洲', 4), ('OTH', '其他', 5))
        AS n (nationality_group, nationality_group_label, ord)
    WHERE d.division_code = d.district_code
)
SELECT %(as_of)s::date AS stat_date,
       g.district_code,
       g.district_name,
       g.nationality_group,
       g.nationality_group_label,
       coalesce(f.population, 0) AS population
FROM grid g
LEFT JOIN foreigner f ON f.district_code = g.district_code AND f.nationality_group = g.nationality_group
ORDER BY g.sort_order, g.ord
