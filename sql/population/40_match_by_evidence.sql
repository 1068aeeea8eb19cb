-- Records without a usable ID: matched on name + birth date + sex + district against the golden persons (their
-- values as survivorship chose them, district of residence or of 户籍) and this run's ID-matched records, only when
-- exactly one person fits. Anything else waits in the review queue (and in quarantine, so that the row accounting
-- holds) — never merged by guess.
-- Set-based: the records to match are joined to the persons (index person_evidence, so an increment probes rather
-- than scans) and to this run's candidates (a hash join: one pass however many records lack an ID). Matching the
-- golden persons rather than every department's statements needs no index on the statements for it (one index
-- fewer to maintain per statement written) and compares with the values the city holds to be true.
-- (with what the review queue says of them: it is written from here, not by reading every candidate again)
-- (and each record's place in the candidates, its ctid, by which the update below finds the matched ones: the
--  candidates are not changed in between, and a join on their key scanned all of them, 0.35 s of one core at 1M)
CREATE TEMP TABLE evidence_query ON COMMIT DROP AS
SELECT source_id, seq, name, birth_date, sex, coalesce(residence_division, hukou_division) AS division, department,
       source_key, ctid AS row_ctid
FROM candidate
WHERE id_number IS NULL;
ANALYZE evidence_query;

CREATE TEMP TABLE evidence_match ON COMMIT DROP AS
SELECT q.source_id, q.seq,
       array_agg(DISTINCT m.person_id) FILTER (WHERE m.person_id IS NOT NULL) AS candidates
FROM evidence_query q
LEFT JOIN (
    SELECT e.source_id, e.seq, p.person_id
    FROM evidence_query e
    JOIN population.person p
      ON p.name = e.name AND p.birth_date = e.birth_date AND p.sex = e.sex
     AND e.division IN (p.residence_division, p.hukou_division)
    UNION ALL
    SELECT e.source_id, e.seq, coalesce(c2.person_id, n.person_id)
    FROM evidence_query e
    JOIN candidate c2
      ON c2.id_number IS NOT NULL AND c2.name = e.name AND c2.birth_date = e.birth_date AND c2.sex = e.sex
     AND e.division IN (c2.residence_division, c2.hukou_division)
    -- (a candidate with a usable ID has its person from 35_candidate_person; in a load reconciled in slices, which
    --  skips that rewrite, it is the new person of its ID)
    LEFT JOIN new_person n ON c2.person_id IS NULL AND n.id_type = c2.id_type AND n.id_number = c2.id_number
) m ON m.source_id = q.source_id AND m.seq = q.seq
GROUP BY q.source_id, q.seq;
-- (without statistics the joins below hashed the 2M candidates, not these few thousand rows)
ANALYZE evidence_match;

UPDATE candidate c SET person_id = e.candidates[1], match_method = 'evidence'
FROM evidence_match e JOIN evidence_query q ON q.source_id = e.source_id AND q.seq = e.seq
WHERE c.ctid = q.row_ctid AND cardinality(e.candidates) = 1;

INSERT INTO population.review_queue (run_id, source_id, seq, department, source_key, reason, candidate_person_ids, evidence)
SELECT %(run_id)s, q.source_id, q.seq, q.department, q.source_key,
       CASE WHEN cardinality(coalesce(e.candidates, '{}')) > 1 THEN 'REVIEW_AMBIGUOUS_MATCH' ELSE 'REVIEW_NO_MATCH' END,
       coalesce(e.candidates, '{}'),
       jsonb_build_object('name', q.name, 'birth_date', q.birth_date, 'sex', q.sex, 'division', q.division)
-- (the records not matched above, told by the match itself; their fields from evidence_query: a join with the
--  candidates scanned every one of them for these few thousand, 0.25 s of the match's one busy backend at 1M)
FROM evidence_match e JOIN evidence_query q ON q.source_id = e.source_id AND q.seq = e.seq
WHERE cardinality(coalesce(e.candidates, '{}')) <> 1;

INSERT INTO quarantine.population_record (run_id, source_id, seq, department, source_key, reasons, payload, origin)
SELECT s.run_id, s.source_id, s.seq, s.department, s.source_key, ARRAY[q.reason], s.payload, s.origin
FROM population.review_queue q
JOIN staging.population_record s USING (run_id, source_id, seq)
WHERE q.run_id = %(run_id)s;

-- (the records without a usable ID that found nobody: queued above. A load into an empty warehouse reads its
--  candidates through the slices' views, which leave out a candidate without a person: not deleted there, a scan
--  of every candidate on the match's one busy backend — 0.5 s at 1M)
DELETE FROM candidate WHERE person_id IS NULL AND id_number IS NULL AND NOT %(into_empty)s;
