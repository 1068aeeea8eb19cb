-- The run's records become statements (population.source_record, append-only); for every record key the latest
-- statement (by source update time, then run, then seq) is the current one, whichever order the runs were made in,
-- and the crosswalk names it (person_xref.current_record_id and the fields it is ordered by). Then the crosswalk
-- follows the current statements.
-- Which statement of a key is the latest is decided before inserting, so that a new statement is written once and
-- no statement is ever updated (a flag on the statements, cleared on the one a newer statement replaced, cost an
-- update of every index of the table per changed key: 15 s of a daily run on a 4M-resident warehouse).

-- the candidates that are not simply a new statement of a key the crosswalk does not hold yet: per such candidate,
-- is it a new statement (an earlier attempt of this run has not recorded it), and is it then the latest of its key
-- (later than the key's latest recorded statement, which the crosswalk names: run_key, made by 20_duplicates — the
-- statements themselves are not read)? Every other candidate is new and the latest of a key the crosswalk will
-- insert: on a full load that is every candidate, and this table is empty (it held a row per candidate, and the
-- steps below joined all of them twice: 4-6 s of a 1M full load).
CREATE TEMP TABLE keyed ON COMMIT DROP AS
SELECT source_id, seq, source_key, prior_id, is_new,
       is_new AND (prior_id IS NULL OR (c_updated, c_run, seq) > (p_updated, p_run, p_seq)) AS wins
FROM (
    SELECT c.source_id, c.seq, c.source_key, c.source_updated_at AS c_updated, c.run_id AS c_run,
           p.current_record_id AS prior_id, p.current_updated_at AS p_updated, p.current_run_id AS p_run,
           p.current_seq AS p_seq,
           e.source_record_id IS NULL AS is_new
    FROM candidate c
    LEFT JOIN run_key p ON p.source_id = c.source_id AND p.source_key = c.source_key
    LEFT JOIN population.source_record e ON e.run_id = c.run_id AND e.source_id = c.source_id AND e.seq = c.seq
    WHERE (p.source_id IS NOT NULL OR e.source_record_id IS NOT NULL)
      -- (a load into an empty warehouse — the slices of pipelines/reconcile/partitioned.py — has neither a held key
      --  nor an earlier attempt's statement: not even scanned, 0.4–0.8 s a slice at 1M)
      AND NOT %(into_empty)s
) x;
ANALYZE keyed;

-- the new statements, with the ids they are given and what the crosswalk takes from a winner (read back from the
-- insert rather than by joining the wide candidate rows again: 8 s of a full load). In a load into an empty
-- warehouse every new statement is its key's latest, and the crosswalk's row of a key it did not hold: the
-- crosswalk is written from the insert's rows straight away, and `inserted` stays empty (writing every statement
-- into it, analysing it and reading it back for the crosswalk cost about 1 s a slice at 1M).
CREATE TEMP TABLE inserted (source_id text, seq bigint, source_record_id bigint, source_key text, department text,
                            person_id bigint, match_method text, source_updated_at timestamptz, run_id bigint,
                            row_hash text) ON COMMIT DROP;
WITH ins AS (
    INSERT INTO population.source_record (
        run_id, source_id, seq, department, source_key, source_updated_at, person_id, match_method, row_hash,
        warnings, id_type, id_number, name, sex, birth_date, ethnicity, nationality, hukou_division, hukou_address,
        residence_division, residence_address, residence_permit_no, population_status, death_date, marital_status,
        employer, employer_uscc, social_insurance_status, education_level, school)
    SELECT c.run_id, c.source_id, c.seq, c.department, c.source_key, c.source_updated_at, c.person_id,
        c.match_method, c.row_hash, c.warnings, c.id_type, c.id_number, c.name, c.sex, c.birth_date, c.ethnicity,
        c.nationality, c.hukou_division, c.hukou_address, c.residence_division, c.residence_address,
        c.residence_permit_no, c.population_status, c.death_date, c.marital_status, c.employer, c.employer_uscc,
        c.social_insurance_status, c.education_level, c.school
    FROM candidate c
    -- (not recorded by an earlier attempt of the run, so no ON CONFLICT needed; in a load into an empty warehouse
    --  keyed is empty, and the planner, told so by the constant, probes nothing: an anti-join rescanning the empty
    --  table once per candidate cost about 1 s a slice at 1M)
    WHERE NOT EXISTS (SELECT 1 FROM keyed k WHERE k.source_id = c.source_id AND k.seq = c.seq AND NOT k.is_new
                                                AND NOT %(into_empty)s)
    RETURNING source_id, seq, source_record_id, source_key, department, person_id, match_method, source_updated_at,
              run_id, row_hash
), crosswalk AS (
    INSERT INTO population.person_xref (source_id, source_key, department, person_id, match_method, first_run_id,
                                        last_run_id, current_record_id, current_updated_at, current_run_id,
                                        current_seq, current_row_hash)
    SELECT i.source_id, i.source_key, i.department, i.person_id, i.match_method, %(run_id)s, %(run_id)s,
           i.source_record_id, i.source_updated_at, i.run_id, i.seq, i.row_hash
    FROM ins i
    WHERE %(into_empty)s
)
INSERT INTO inserted SELECT * FROM ins WHERE NOT %(into_empty)s;
ANALYZE inserted;

-- persons whose statements change in this run: those of the run's records, and those the records pointed to before
-- (left empty by a load into an empty warehouse, where they are every person the slice writes: its survivorship,
-- SCD2 merge and discrepancies read the persons themselves — survivorship's every_person — and none is orphaned;
-- 0.9–1.2 s a slice at 1M)
CREATE TEMP TABLE touched ON COMMIT DROP AS
SELECT DISTINCT person_id FROM candidate WHERE NOT %(into_empty)s
UNION
SELECT k.person_id FROM run_key k JOIN candidate c USING (source_id, source_key) WHERE NOT %(into_empty)s;

-- the crosswalk follows the latest statement of each of the run's keys: the keys it holds are updated, the others
-- inserted (two statements rather than INSERT … ON CONFLICT DO UPDATE, whose speculative insertion per row cost
-- a third of the statement on a full load, where every key is new). Which keys it holds (held) is known from
-- run_key, read before either writes: an INSERT whose anti-join reads the table it inserts into was planned, on an
-- emptied and vacuumed crosswalk (0 rows known), as a nested loop scanning the growing table once per inserted
-- row — quadratic. latest: the keys of keyed (a held key, or one whose statement an earlier attempt recorded),
-- with their latest statement, new or prior; the statements of the other keys are inserted straight from
-- inserted below.
CREATE TEMP TABLE latest ON COMMIT DROP AS
SELECT l.*, x.source_id IS NOT NULL AS held
FROM (
    SELECT i.source_id, i.source_key, i.department, i.person_id, i.match_method, i.source_record_id AS record_id,
           i.source_updated_at AS updated_at, i.run_id, i.seq, i.row_hash
    FROM inserted i JOIN keyed k ON k.source_id = i.source_id AND k.seq = i.seq
    WHERE k.wins
    UNION ALL
    SELECT sr.source_id, sr.source_key, sr.department, sr.person_id, sr.match_method, sr.source_record_id,
           sr.source_updated_at, sr.run_id, sr.seq, sr.row_hash
    FROM keyed k JOIN population.source_record sr ON sr.source_record_id = k.prior_id
    WHERE NOT k.wins
) l
LEFT JOIN run_key x ON x.source_id = l.source_id AND x.source_key = l.source_key;  -- (the keys it holds)
ANALYZE latest;

UPDATE population.person_xref x
SET person_id = l.person_id, match_method = l.match_method,
    first_run_id = least(x.first_run_id, %(run_id)s), last_run_id = greatest(x.last_run_id, %(run_id)s),
    current_record_id = l.record_id, current_updated_at = l.updated_at, current_run_id = l.run_id,
    current_seq = l.seq, current_row_hash = l.row_hash
FROM latest l
WHERE l.held AND x.source_id = l.source_id AND x.source_key = l.source_key;

INSERT INTO population.person_xref (source_id, source_key, department, person_id, match_method, first_run_id, last_run_id,
                                    current_record_id, current_updated_at, current_run_id, current_seq, current_row_hash)
SELECT l.source_id, l.source_key, l.department, l.person_id, l.match_method, %(run_id)s, %(run_id)s,
       l.record_id, l.updated_at, l.run_id, l.seq, l.row_hash
FROM latest l
WHERE NOT l.held
UNION ALL
SELECT i.source_id, i.source_key, i.department, i.person_id, i.match_method, %(run_id)s, %(run_id)s,
       i.source_record_id, i.source_updated_at, i.run_id, i.seq, i.row_hash
FROM inserted i
WHERE NOT EXISTS (SELECT 1 FROM keyed k WHERE k.source_id = i.source_id AND k.seq = i.seq);
