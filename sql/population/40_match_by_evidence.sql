-- Records without a usable ID: matched on name + birth date + sex + district against the current statements of
-- every department (this run's ID-matched records included), only when exactly one person fits. Anything else
-- waits in the review queue (and in quarantine, so that the row accounting holds) — never merged by guess.
CREATE TEMP TABLE evidence_match ON COMMIT DROP AS
SELECT c.source_id, c.seq,
       array_agg(DISTINCT m.person_id) FILTER (WHERE m.person_id IS NOT NULL) AS candidates
FROM candidate c
LEFT JOIN LATERAL (
    SELECT sr.person_id FROM population.source_record sr
    WHERE sr.is_current AND sr.name = c.name AND sr.birth_date = c.birth_date AND sr.sex = c.sex
      AND coalesce(c.residence_division, c.hukou_division) IN (sr.residence_division, sr.hukou_division)
    UNION
    SELECT c2.person_id FROM candidate c2
    WHERE c2.person_id IS NOT NULL AND c2.name = c.name AND c2.birth_date = c.birth_date AND c2.sex = c.sex
      AND coalesce(c.residence_division, c.hukou_division) IN (c2.residence_division, c2.hukou_division)
) m ON c.name IS NOT NULL AND c.birth_date IS NOT NULL AND c.sex IS NOT NULL
      AND coalesce(c.residence_division, c.hukou_division) IS NOT NULL
WHERE c.id_number IS NULL
GROUP BY c.source_id, c.seq;

UPDATE candidate c SET person_id = e.candidates[1], match_method = 'evidence'
FROM evidence_match e
WHERE e.source_id = c.source_id AND e.seq = c.seq AND cardinality(e.candidates) = 1;

INSERT INTO population.review_queue (run_id, source_id, seq, department, source_key, reason, candidate_person_ids, evidence)
SELECT %(run_id)s, c.source_id, c.seq, c.department, c.source_key,
       CASE WHEN cardinality(coalesce(e.candidates, '{}')) > 1 THEN 'REVIEW_AMBIGUOUS_MATCH' ELSE 'REVIEW_NO_MATCH' END,
       coalesce(e.candidates, '{}'),
       jsonb_build_object('name', c.name, 'birth_date', c.birth_date, 'sex', c.sex,
                          'division', coalesce(c.residence_division, c.hukou_division))
FROM candidate c JOIN evidence_match e ON e.source_id = c.source_id AND e.seq = c.seq
WHERE c.person_id IS NULL;

INSERT INTO quarantine.population_record (run_id, source_id, seq, department, source_key, reasons, payload, origin)
SELECT s.run_id, s.source_id, s.seq, s.department, s.source_key, ARRAY[q.reason], s.payload, s.origin
FROM population.review_queue q
JOIN staging.population_record s USING (run_id, source_id, seq)
WHERE q.run_id = %(run_id)s;

DELETE FROM candidate WHERE person_id IS NULL;
