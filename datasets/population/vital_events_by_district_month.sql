-- 分区月度出生和死亡人数: one row per (month, district, event) over the 24 months ending with the month of
-- %(as_of)s, the full grid. Births: population.person.birth_date; deaths: population.person.death_date (whatever
-- the person's status today), both by the person's district of residence. Read from population.resident_cell (the
-- persons counted per district, birth and death date, …: migration 0018), not from every resident.
WITH months AS (
    SELECT generate_series(date_trunc('month', %(as_of)s::date) - interval '23 months',
                           date_trunc('month', %(as_of)s::date), interval '1 month')::date AS month_start
),
event AS (  -- summed per output cell below, before the grid (see population_by_district_sex_age.sql)
    SELECT d.district_code, date_trunc('month', p.birth_date)::date AS month_start, 'birth' AS event, p.persons
    FROM population.resident_cell p
    JOIN publish_work.district_map d ON d.division_code = p.residence_division
    WHERE p.birth_date <= %(as_of)s::date
      AND p.birth_date >= date_trunc('month', %(as_of)s::date) - interval '23 months'
    UNION ALL
    SELECT d.district_code, date_trunc('month', p.death_date)::date, 'death', p.persons
    FROM population.resident_cell p
    JOIN publish_work.district_map d ON d.division_code = p.residence_division
    WHERE p.death_date <= %(as_of)s::date
      AND p.death_date >= date_trunc('month', %(as_of)s::date) - interval '23 months'
),
counted AS (
    SELECT month_start, district_code, event, sum(persons) AS persons FROM event GROUP BY 1, 2, 3
),
grid AS (
    SELECT m.month_start, d.district_code, d.district_name, d.sort_order, e.event, e.event_label, e.ord
    FROM months m
    CROSS JOIN publish_work.district_map d
    CROSS JOIN (VALUES ('birth', '出生', 1), ('death', '死亡', 2)) AS e (event, event_label, ord)
    WHERE d.division_code = d.district_code
)
SELECT to_char(g.month_start, 'YYYY-MM') AS month,
       g.district_code,
       g.district_name,
       g.event,
       g.event_label,
       coalesce(v.persons, 0) AS persons
FROM grid g
LEFT JOIN counted v ON v.month_start = g.month_start AND v.district_code = g.district_code AND v.event = g.event
ORDER BY g.month_start, g.sort_order, g.ord
