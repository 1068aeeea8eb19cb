-- The run's records become statements (population.source_record); for every record key the latest statement
-- is the current one, whichever order the runs were made in. Then the crosswalk follows the current statements.
INSERT INTO population.source_record (
    run_id, source_id, seq, department, source_key, source_updated_at, person_id, match_method, row_hash, warnings,
    id_type, id_number, name, sex, birth_date, ethnicity, nationality, hukou_division, hukou_address,
    residence_division, residence_address, residence_permit_no, population_status, death_date, marital_status,
    employer, employer_uscc, social_insurance_status, education_level, school, is_current)
SELECT run_id, source_id, seq, department, source_key, source_updated_at, person_id, match_method, row_hash, warnings,
    id_type, id_number, name, sex, birth_date, ethnicity, nationality, hukou_division, hukou_address,
    residence_division, residence_address, residence_permit_no, population_status, death_date, marital_status,
    employer, employer_uscc, social_insurance_status, education_level, school, false
FROM candidate
ON CONFLICT (run_id, source_id, seq) DO NOTHING;

-- persons whose statements change in this run: those of the run's records, and those the records pointed to before
CREATE TEMP TABLE touched ON COMMIT DROP AS
SELECT DISTINCT person_id FROM candidate
UNION
SELECT x.person_id FROM population.person_xref x JOIN candidate c USING (source_id, source_key);

CREATE TEMP TABLE latest ON COMMIT DROP AS
SELECT DISTINCT ON (sr.source_id, sr.source_key) sr.source_record_id, sr.source_id, sr.source_key
FROM population.source_record sr
JOIN (SELECT DISTINCT source_id, source_key FROM candidate) k USING (source_id, source_key)
ORDER BY sr.source_id, sr.source_key, sr.source_updated_at DESC, sr.run_id DESC, sr.seq DESC;

UPDATE population.source_record sr SET is_current = false
FROM latest l
WHERE sr.source_id = l.source_id AND sr.source_key = l.source_key AND sr.is_current
  AND sr.source_record_id <> l.source_record_id;
UPDATE population.source_record sr SET is_current = true
FROM latest l
WHERE sr.source_record_id = l.source_record_id AND NOT sr.is_current;

INSERT INTO population.person_xref (source_id, source_key, department, person_id, match_method, first_run_id, last_run_id)
SELECT sr.source_id, sr.source_key, sr.department, sr.person_id, sr.match_method, %(run_id)s, %(run_id)s
FROM latest l JOIN population.source_record sr USING (source_record_id)
ON CONFLICT (source_id, source_key) DO UPDATE
SET person_id = EXCLUDED.person_id, match_method = EXCLUDED.match_method,
    first_run_id = least(population.person_xref.first_run_id, EXCLUDED.first_run_id),
    last_run_id = greatest(population.person_xref.last_run_id, EXCLUDED.last_run_id);
