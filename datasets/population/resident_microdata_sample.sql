-- 实有人口抽样个体数据: a deterministic sample of about 20 %% (51 in 256) (by a salted hash of the surrogate key, which is not
-- published) of the universe of population_by_district_sex_age, with generalised quasi-identifiers. No row
-- order or value reveals the person: rows are sorted by their published values only.
SELECT %(as_of)s::date AS stat_date,
       CASE WHEN d.district_code IN ('310101', '310104', '310105', '310106', '310107', '310109', '310110')
            THEN 'central' WHEN d.district_code = '310115' THEN 'pudong' ELSE 'suburban' END AS region_code,
       CASE WHEN d.district_code IN ('310101', '310104', '310105', '310106', '310107', '310109', '310110')
            THEN '中心城区' WHEN d.district_code = '310115' THEN '浦东新区' ELSE '郊区' END AS region_label,
       p.sex AS sex_code,
       CASE p.sex WHEN '1' THEN '男' ELSE '女' END AS sex_label,
       CASE WHEN date_part('year', age(%(as_of)s::date, p.birth_date)) >= 80 THEN '80+'
            ELSE lpad((floor(date_part('year', age(%(as_of)s::date, p.birth_date)) / 10) * 10)::int::text, 2, '0')
                 || '-' || lpad((floor(date_part('year', age(%(as_of)s::date, p.birth_date)) / 10) * 10 + 9)::int::text, 2, '0')
       END AS age_band,
       coalesce(p.is_registered, false) AS registered,
       CASE p.marital_status WHEN '10' THEN '未婚' WHEN '20' THEN '已婚' WHEN '30' THEN '丧偶' WHEN '40' THEN '离婚'
            ELSE '不详' END AS marital_status_label
FROM population.person p
JOIN publish_work.district_map d ON d.division_code = p.residence_division
WHERE population.is_resident_on(p.death_date, p.population_status, p.sex, p.birth_date, %(as_of)s::date)
  AND get_byte(decode(md5('resident_microdata_sample:' || p.person_id), 'hex'), 0) < 51
ORDER BY 2, 4, 6, 7, 8
