-- Records with a usable identity document number match the golden person holding it; a number never seen
-- before creates a person (values are filled by survivorship below).
ALTER TABLE candidate ADD COLUMN person_id bigint, ADD COLUMN match_method text;

INSERT INTO population.person (id_type, id_number, row_hash, valid_from, created_run_id, updated_run_id)
SELECT DISTINCT ON (id_type, id_number) id_type, id_number, '', source_updated_at, %(run_id)s, %(run_id)s
FROM candidate
WHERE id_number IS NOT NULL
ORDER BY id_type, id_number, source_updated_at, source_id, seq
ON CONFLICT (id_type, id_number) WHERE id_number IS NOT NULL DO NOTHING;

UPDATE candidate c
SET person_id = p.person_id,
    match_method = CASE WHEN p.created_run_id = %(run_id)s THEN 'new' ELSE 'id_number' END
FROM population.person p
WHERE c.id_number IS NOT NULL AND p.id_type = c.id_type AND p.id_number = c.id_number;
