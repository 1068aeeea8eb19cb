-- The accepted rows of the run (no reject reason), normalised into the shape of population.source_record.
-- A temporary table for the rest of the reconciliation transaction.
CREATE TEMP TABLE candidate ON COMMIT DROP AS
SELECT s.run_id, s.source_id, s.seq, s.department, population.norm_text(s.source_key) AS source_key,
       coalesce(s.source_updated_at, r.interval_start) AS source_updated_at,
       c.warnings, c.id_type, c.id_number,
       population.norm_name(s.name)                  AS name,
       c.sex, c.birth_date,
       population.norm_text(s.ethnicity)             AS ethnicity,
       upper(population.norm_text(s.nationality))    AS nationality,
       population.norm_text(s.hukou_division)        AS hukou_division,
       population.norm_text(s.hukou_address)         AS hukou_address,
       population.norm_text(s.residence_division)    AS residence_division,
       population.norm_text(s.residence_address)     AS residence_address,
       upper(population.norm_text(s.residence_permit_no)) AS residence_permit_no,
       population.norm_population_status(s.population_status, s.event_type,
           coalesce(c.death_date, c.event_date)) AS population_status,
       coalesce(c.death_date, CASE WHEN population.norm_text(s.event_type) IN ('死亡注销', '死亡', 'DEATH')
                                   THEN c.event_date END) AS death_date,
       population.norm_marital_status(s.marital_status) AS marital_status,
       population.norm_text(s.employer)              AS employer,
       upper(population.norm_text(s.employer_uscc))  AS employer_uscc,
       population.norm_text(s.social_insurance_status) AS social_insurance_status,
       population.norm_text(s.education_level)       AS education_level,
       population.norm_text(s.school)                AS school
FROM staging.population_record s
JOIN staging.population_checked c USING (run_id, source_id, seq)
JOIN audit.run r ON r.run_id = s.run_id
WHERE s.run_id = %(run_id)s
  AND cardinality(c.reasons) = 0;

ALTER TABLE candidate ADD COLUMN row_hash text;
UPDATE candidate SET row_hash = md5(row(id_type, id_number, name, sex, birth_date, ethnicity, nationality,
    hukou_division, hukou_address, residence_division, residence_address, residence_permit_no, population_status,
    death_date, marital_status, employer, employer_uscc, social_insurance_status, education_level, school)::text);
CREATE INDEX ON candidate (source_id, source_key);
ANALYZE candidate;
