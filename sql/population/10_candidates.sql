-- The accepted rows of the run (no reject reason), normalised into the shape of population.source_record, with the
-- hash of their normalised content (population.values_hash, migration 0022: a 64-bit hash of the values' row, not
-- md5 of the row as text, which took 4.7 of this step's 11.5 s at 1M residents). A temporary table for the rest of
-- the reconciliation transaction. The staged rows carry their checks (migration 0024): no join with a table of
-- checks. Written once (the hash computed on the way in rather than by an UPDATE of every row afterwards), by a
-- plan the parallel workers can run whole (the run's start comes from a scalar subquery, not a join above the
-- Gather). A row its source adapter found plain (migration 0028: no field holds whitespace or a full-width
-- character) skips the normalisation's test of every field, which it would pass untouched (a regular expression per
-- field: 3.4 of the statement's 13 CPU s at 1M residents); any other row is normalised in full.
CREATE TEMP TABLE candidate ON COMMIT DROP AS
SELECT n.*,
       population.values_hash(n.id_type, n.id_number, n.name, n.sex, n.birth_date, n.ethnicity, n.nationality,
               n.hukou_division, n.hukou_address, n.residence_division, n.residence_address, n.residence_permit_no,
               n.population_status, n.death_date, n.marital_status, n.employer, n.employer_uscc,
               n.social_insurance_status, n.education_level, n.school) AS row_hash
FROM (
    SELECT s.run_id, s.source_id, s.seq, s.department, population.norm_text(s.source_key, s.plain) AS source_key,
           s.key_repeated,
           coalesce(s.source_updated_at,
                    (SELECT r.interval_start FROM audit.run r WHERE r.run_id = %(run_id)s)) AS source_updated_at,
           s.warnings, s.checked_id_type AS id_type, s.checked_id_number AS id_number,
           population.norm_name(s.name, s.plain)                        AS name,
           s.checked_sex AS sex, s.checked_birth_date AS birth_date,
           population.norm_text(s.ethnicity, s.plain)                   AS ethnicity,
           upper(population.norm_text(s.nationality, s.plain))          AS nationality,
           population.norm_text(s.hukou_division, s.plain)              AS hukou_division,
           population.norm_text(s.hukou_address, s.plain)               AS hukou_address,
           population.norm_text(s.residence_division, s.plain)          AS residence_division,
           population.norm_text(s.residence_address, s.plain)           AS residence_address,
           upper(population.norm_text(s.residence_permit_no, s.plain))  AS residence_permit_no,
           population.norm_population_status(s.population_status, s.event_type,
               coalesce(s.checked_death_date, s.checked_event_date), s.plain) AS population_status,
           coalesce(s.checked_death_date,
                    CASE WHEN population.norm_text(s.event_type, s.plain) IN ('死亡注销', '死亡', 'DEATH')
                         THEN s.checked_event_date END) AS death_date,
           population.norm_marital_status(s.marital_status, s.plain)    AS marital_status,
           population.norm_text(s.employer, s.plain)                    AS employer,
           upper(population.norm_text(s.employer_uscc, s.plain))        AS employer_uscc,
           population.norm_text(s.social_insurance_status, s.plain)     AS social_insurance_status,
           population.norm_text(s.education_level, s.plain)             AS education_level,
           population.norm_text(s.school, s.plain)                      AS school
    FROM staging.population_record s
    WHERE s.run_id = %(run_id)s
      AND s.reasons = '{}'  -- (not cardinality() = 0: its selectivity is a guess; this uses the statistics)
) n;

ANALYZE candidate;
