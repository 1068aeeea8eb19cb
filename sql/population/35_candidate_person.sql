-- The candidates with their person (NULL: no usable ID, matched on evidence next). Made as a new table that
-- replaces the old one rather than by an UPDATE of every candidate, which on a full load rewrites every row and
-- its index entry.
-- Not run by a load into an empty warehouse reconciled in slices (pipelines/reconcile/partitioned.py): there
-- every candidate with a usable ID is a new person's, and the candidates keep no person until each slice reads
-- its own, joined with new_person (this rewrite of every wide candidate was about 6 s of that load's one busy
-- backend at 1M residents). 40_match_by_evidence works on either form.
CREATE TEMP TABLE candidate_matched ON COMMIT DROP AS
SELECT c.*, coalesce(p.person_id, n.person_id) AS person_id,
       CASE WHEN n.person_id IS NOT NULL OR p.created_run_id = %(run_id)s THEN 'new'
            WHEN p.person_id IS NOT NULL THEN 'id_number' END AS match_method
FROM candidate c
LEFT JOIN population.person p
       ON c.id_number IS NOT NULL AND p.id_type = c.id_type AND p.id_number = c.id_number
LEFT JOIN new_person n
       ON c.id_number IS NOT NULL AND n.id_type = c.id_type AND n.id_number = c.id_number;
DROP TABLE candidate;
ALTER TABLE candidate_matched RENAME TO candidate;
ANALYZE candidate;
