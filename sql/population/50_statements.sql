-- The run's records become statements (population.source_record); for every record key the latest statement
-- (by source update time, then run, then seq) is the current one, whichever order the runs were made in. Then the
-- crosswalk follows the current statements.
-- Which statement of a key is the latest is decided before inserting, so that a new statement is written once,
-- current or not, rather than inserted and then updated (which rewrote every row of a full load).

-- the latest recorded statement of each of the run's record keys (from earlier runs, or an earlier attempt of
-- this run)
CREATE TEMP TABLE prior ON COMMIT DROP AS
SELECT DISTINCT ON (sr.source_id, sr.source_key) sr.source_id, sr.source_key, sr.source_record_id,
       sr.source_updated_at, sr.run_id, sr.seq
FROM population.source_record sr
JOIN (SELECT DISTINCT source_id, source_key FROM candidate) k USING (source_id, source_key)
ORDER BY sr.source_id, sr.source_key, sr.source_updated_at DESC, sr.run_id DESC, sr.seq DESC;

-- per candidate: is it a new statement (an earlier attempt of this run has not recorded it), and is it then the
-- latest of its key (later than every recorded statement of the key)?
CREATE TEMP TABLE keyed ON COMMIT DROP AS
SELECT source_id, seq, source_key, prior_id, is_new,
       is_new AND (prior_id IS NULL OR (c_updated, c_run, seq) > (p_updated, p_run, p_seq)) AS wins
FROM (
    SELECT c.source_id, c.seq, c.source_key, c.source_updated_at AS c_updated, c.run_id AS c_run,
           p.source_record_id AS prior_id, p.source_updated_at AS p_updated, p.run_id AS p_run, p.seq AS p_seq,
           e.source_record_id IS NULL AS is_new
    FROM candidate c
    LEFT JOIN prior p ON p.source_id = c.source_id AND p.source_key = c.source_key
    LEFT JOIN population.source_record e ON e.run_id = c.run_id AND e.source_id = c.source_id AND e.seq = c.seq
) x;
ANALYZE keyed;

-- a current statement of one of the run's keys that is not the latest any more stops being current
UPDATE population.source_record sr SET is_current = false
FROM keyed k
WHERE sr.source_id = k.source_id AND sr.source_key = k.source_key AND sr.is_current
  AND (k.wins OR sr.source_record_id IS DISTINCT FROM k.prior_id);

INSERT INTO population.source_record (
    run_id, source_id, seq, department, source_key, source_updated_at, person_id, match_method, row_hash, warnings,
    id_type, id_number, name, sex, birth_date, ethnicity, nationality, hukou_division, hukou_address,
    residence_division, residence_address, residence_permit_no, population_status, death_date, marital_status,
    employer, employer_uscc, social_insurance_status, education_level, school, is_current)
SELECT c.run_id, c.source_id, c.seq, c.department, c.source_key, c.source_updated_at, c.person_id, c.match_method,
    c.row_hash, c.warnings, c.id_type, c.id_number, c.name, c.sex, c.birth_date, c.ethnicity, c.nationality,
    c.hukou_division, c.hukou_address, c.residence_division, c.residence_address, c.residence_permit_no,
    c.population_status, c.death_date, c.marital_status, c.employer, c.employer_uscc, c.social_insurance_status,
    c.education_level, c.school, k.wins
FROM candidate c
JOIN keyed k ON k.source_id = c.source_id AND k.seq = c.seq
WHERE k.is_new;  -- (is_new: not recorded by an earlier attempt of the run, so no ON CONFLICT needed)

-- a recorded statement that is the latest of its key but not current becomes current (the ids as an array, so that
-- the plan is a probe of the primary key per id whatever the statistics say: a join was once planned as a scan of
-- every statement, 8 s of a 1M increment)
UPDATE population.source_record sr SET is_current = true
WHERE sr.source_record_id = ANY (ARRAY(SELECT k.prior_id FROM keyed k WHERE NOT k.wins AND k.prior_id IS NOT NULL))
  AND NOT sr.is_current;

-- persons whose statements change in this run: those of the run's records, and those the records pointed to before
CREATE TEMP TABLE touched ON COMMIT DROP AS
SELECT DISTINCT person_id FROM candidate
UNION
SELECT x.person_id FROM population.person_xref x JOIN candidate c USING (source_id, source_key);

-- the crosswalk follows the latest statement of each of the run's keys: the keys it holds are updated, the others
-- inserted (two statements rather than INSERT … ON CONFLICT DO UPDATE, whose speculative insertion per row cost
-- a third of the statement on a full load, where every key is new). Which keys it holds is decided before either
-- writes (held): an INSERT whose anti-join reads the table it inserts into was planned, on an emptied and vacuumed
-- crosswalk (0 rows known), as a nested loop scanning the growing table once per inserted row — quadratic.
CREATE TEMP TABLE latest ON COMMIT DROP AS
SELECT l.*, x.source_id IS NOT NULL AS held
FROM (
    SELECT c.source_id, c.source_key, c.department, c.person_id, c.match_method
    FROM candidate c JOIN keyed k ON k.source_id = c.source_id AND k.seq = c.seq
    WHERE k.wins
    UNION ALL
    SELECT sr.source_id, sr.source_key, sr.department, sr.person_id, sr.match_method
    FROM keyed k JOIN population.source_record sr ON sr.source_record_id = k.prior_id
    WHERE NOT k.wins
) l
LEFT JOIN population.person_xref x ON x.source_id = l.source_id AND x.source_key = l.source_key;
ANALYZE latest;

UPDATE population.person_xref x
SET person_id = l.person_id, match_method = l.match_method,
    first_run_id = least(x.first_run_id, %(run_id)s), last_run_id = greatest(x.last_run_id, %(run_id)s)
FROM latest l
WHERE l.held AND x.source_id = l.source_id AND x.source_key = l.source_key;

INSERT INTO population.person_xref (source_id, source_key, department, person_id, match_method, first_run_id, last_run_id)
SELECT l.source_id, l.source_key, l.department, l.person_id, l.match_method, %(run_id)s, %(run_id)s
FROM latest l
WHERE NOT l.held;
