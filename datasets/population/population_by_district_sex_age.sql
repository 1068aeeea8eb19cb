-- 实有人口分区、性别、年龄段统计: one row per (district, sex, five-year age band), the full grid (zeros included).
-- Universe resident_population (that of registered_residents_by_district and the microdata): persons alive and not
-- moved out on %(as_of)s, with sex 1/2 and a birth date (population.is_resident_on, migration 0021), whose residence
-- division maps to a current Shanghai district.
-- Read from population.resident_cell, the golden persons already counted per district, sex, birth date, … and kept
-- current by the reconciliation (migration 0018): a day's release reads a table bounded by those attributes'
-- domains instead of every resident. The cells are summed per output cell (a hash aggregate: at most 576 groups),
-- then set on the grid.
WITH resident AS (
    SELECT d.district_code,
           p.sex AS sex_code,
           least(floor(date_part('year', age(%(as_of)s::date, p.birth_date)) / 5), 17)::int AS band,
           sum(p.persons) AS population
    FROM population.resident_cell p
    JOIN publish_work.district_map d ON d.division_code = p.residence_division
    WHERE population.is_resident_on(p.death_date, p.population_status, p.sex, p.birth_date, %(as_of)s::date)
    GROUP BY 1, 2, 3
),
grid AS (
    SELECT d.district_code, d.district_name, d.sort_order, s.sex_code, s.sex_label, b.band
    FROM publish_work.district_map d
    CROSS JOIN (VALUES ('1', '男'), ('2', '女')) AS s (sex_code, sex_label)
    CROSS JOIN generate_series(0, 17) AS b (band)
    WHERE d.division_code = d.district_code
)
SELECT %(as_of)s::date AS stat_date,
       g.district_code,
       g.district_name,
       g.sex_code,
       g.sex_label,
       CASE WHEN g.band = 17 THEN '85+'
            ELSE lpad((g.band * 5)::text, 2, '0') || '-' || lpad((g.band * 5 + 4)::text, 2, '0') END AS age_band,
       coalesce(r.population, 0) AS population
FROM grid g
LEFT JOIN resident r ON r.district_code = g.district_code AND r.sex_code = g.sex_code AND r.band = g.band
ORDER BY g.sort_order, g.sex_code, g.band
