-- 户籍与非户籍实有人口分区统计: one row per (district, registered / non-registered), the full grid.
-- Universe resident_population, that of population_by_district_sex_age: population.is_resident_on (migration 0021)
-- and a residence division that maps to a current district.
-- Summed from population.resident_cell per output cell, then set on the grid (see population_by_district_sex_age.sql).
WITH resident AS (  -- (summed per division first, then per district: see population_by_district_sex_age.sql)
    SELECT d.district_code, c.registration, sum(c.population) AS population
    FROM (
        SELECT p.residence_division,
               CASE WHEN coalesce(p.is_registered, false) THEN 'registered' ELSE 'non_registered' END AS registration,
               sum(p.persons) AS population
        FROM population.resident_cell p
        WHERE population.is_resident_on(p.death_date, p.population_status, p.sex, p.birth_date, %(as_of)s::date)
        GROUP BY 1, 2
    ) c
    JOIN publish_work.district_map d ON d.division_code = c.residence_division
    GROUP BY 1, 2
),
grid AS (
    SELECT d.district_code, d.district_name, d.sort_order, r.registration, r.registration_label, r.ord
    FROM publish_work.district_map d
    CROSS JOIN (VALUES ('registered', '户籍', 1), ('non_registered', '非户籍', 2))
        AS r (registration, registration_label, ord)
    WHERE d.division_code = d.district_code
)
SELECT %(as_of)s::date AS stat_date,
       g.district_code,
       g.district_name,
       g.registration,
       g.registration_label,
       coalesce(r.population, 0) AS population
FROM grid g
LEFT JOIN resident r ON r.district_code = g.district_code AND r.registration = g.registration
ORDER BY g.sort_order, g.ord
