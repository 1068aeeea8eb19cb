-- Records with a usable identity document number match the golden person holding it; a number never seen
-- before creates a person (values are filled by survivorship below). The persons already held are left out by an
-- anti-join rather than ON CONFLICT DO NOTHING: a speculative insertion per row cost a quarter of the statement
-- on a full load, where nothing conflicts (the reconciliation is the only writer of the table; a concurrent
-- writer would make the unique index raise, not lose a row).
INSERT INTO population.person (id_type, id_number, row_hash, valid_from, created_run_id, updated_run_id)
SELECT DISTINCT ON (c.id_type, c.id_number) c.id_type, c.id_number, '', c.source_updated_at, %(run_id)s, %(run_id)s
FROM candidate c
WHERE c.id_number IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM population.person p WHERE p.id_type = c.id_type AND p.id_number = c.id_number)
ORDER BY c.id_type, c.id_number, c.source_updated_at, c.source_id, c.seq;

-- The candidates with their person (NULL: no usable ID, matched on evidence below). Made as a new table that
-- replaces the old one rather than by an UPDATE of every candidate, which on a full load rewrites every row and
-- its index entry.
CREATE TEMP TABLE candidate_matched ON COMMIT DROP AS
SELECT c.*, p.person_id,
       CASE WHEN p.person_id IS NULL THEN NULL
            WHEN p.created_run_id = %(run_id)s THEN 'new' ELSE 'id_number' END AS match_method
FROM candidate c
LEFT JOIN population.person p
       ON c.id_number IS NOT NULL AND p.id_type = c.id_type AND p.id_number = c.id_number;
DROP TABLE candidate;
ALTER TABLE candidate_matched RENAME TO candidate;
ANALYZE candidate;
