-- Duplicates: (1) several rows of the run with the same source record key: the latest (by the source's update
-- time, then extraction order) is kept, the others are superseded; (2) a kept row identical in content to the
-- latest version of that record merged by an earlier run is an unchanged re-delivery.
-- Only the keys that occur more than once are ranked (sorting every candidate for the window cost most of the step
-- on a full load, where 1 % of the keys repeat). Candidates all have a key (a row without one is rejected by
-- validation). The repeated keys are found by grouping in key order — one sort, which parallel workers share when
-- the candidates are a table they can read (merge.STEP_SETTINGS; bytewise, whatever the database's collation) — and
-- written before the ranking, both as `CREATE TABLE … AS`, which may run in parallel workers where an INSERT may not:
-- the hash aggregate of one process it replaces held every key in memory (311 MB at 1M residents; past work_mem at
-- 4M, where it spilled to disk and the step took 17 s of one core).
-- Only the rows the extract flagged are grouped (key_repeated, migration 0030: of any two candidates with one key,
-- at least one is flagged): grouping every candidate — two million groups at 1M residents, a table the leader of
-- the parallel plan built alone — was 4.3 s of the slower machine's match. A source with any row of the run staged
-- without the flag (NULL: by other means or an older version) has all its rows grouped, as before, flagged or not;
-- those sources are read from the staged rows' index of unflagged rows (migration 0031: empty for rows the extract
-- staged), not by a scan of every candidate joined back to each one (2.3 s at 1M, against 0.3 s for the whole
-- statement now, its one scan shared with a parallel worker). A first of its key, unflagged, makes a flagged row
-- alone in its group a repeated key all the same; in a whole source a key repeats when it has two rows.
CREATE TEMP TABLE repeated_key ON COMMIT DROP AS
SELECT source_id COLLATE "default" AS source_id, source_key COLLATE "default" AS source_key
FROM (SELECT x.source_id, x.source_key
      FROM (SELECT c.source_id COLLATE "C" AS source_id, c.source_key COLLATE "C" AS source_key,
                   c.source_id = ANY (u.sources) AS whole
            FROM candidate c,
                 (SELECT ARRAY(SELECT DISTINCT s.source_id FROM staging.population_record s
                               WHERE s.run_id = %(run_id)s AND s.key_repeated IS NULL) AS sources) u
            WHERE c.key_repeated OR c.source_id = ANY (u.sources)) x
      GROUP BY 1, 2 HAVING count(*) > 1 OR NOT bool_or(x.whole)) r;
-- (few rows, analysed: without statistics the joins below hashed the 1.9M candidates instead of them)
ANALYZE repeated_key;

-- (with each superseded row's place in the candidates, its ctid, by which the delete below finds it: the candidates
--  are not changed in between, and a join on their key scanned all 1.9M of them for 23k rows, 0.4 s of one core)
CREATE TEMP TABLE superseded ON COMMIT DROP AS
SELECT source_id, seq, kept_seq, row_ctid
FROM (SELECT c.source_id, c.seq, c.ctid AS row_ctid, first_value(c.seq) OVER w AS kept_seq, row_number() OVER w AS rn
      FROM candidate c JOIN repeated_key r ON r.source_id = c.source_id AND r.source_key = c.source_key
      WINDOW w AS (PARTITION BY c.source_id, c.source_key ORDER BY c.source_updated_at DESC, c.seq DESC)) ranked
WHERE rn > 1;
ANALYZE superseded;

INSERT INTO staging.population_duplicate (run_id, source_id, seq, kind, duplicate_of)
SELECT %(run_id)s, source_id, seq, 'superseded_in_run', 'seq ' || kept_seq
FROM superseded;

DELETE FROM candidate c USING superseded s WHERE c.ctid = s.row_ctid;

-- The crosswalk row of each of the run's keys that has one (a key with statements has one), naming the key's latest
-- recorded statement: one primary-key probe per key (50_statements uses it too). Each key is one candidate now.
CREATE TEMP TABLE run_key ON COMMIT DROP AS
SELECT x.source_id, x.source_key, x.person_id, x.current_record_id, x.current_updated_at, x.current_run_id,
       x.current_seq, x.current_row_hash
FROM candidate c
JOIN population.person_xref x ON x.source_id = c.source_id AND x.source_key = c.source_key;
ANALYZE run_key;

-- the latest statement of each key recorded by an earlier run: the crosswalk's, unless that is of this run or a
-- later one (the run made again, or an older run made after newer ones): then the key's statements are looked
-- through for the latest of an earlier run
CREATE TEMP TABLE earlier ON COMMIT DROP AS
SELECT k.source_id, k.source_key, k.current_record_id AS source_record_id, k.current_row_hash AS row_hash
FROM run_key k
WHERE k.current_run_id < %(run_id)s
UNION ALL
(SELECT DISTINCT ON (sr.source_id, sr.source_key) sr.source_id, sr.source_key, sr.source_record_id, sr.row_hash
 FROM population.source_record sr
 JOIN run_key k ON k.source_id = sr.source_id AND k.source_key = sr.source_key AND k.current_run_id >= %(run_id)s
 WHERE sr.run_id < %(run_id)s
 ORDER BY sr.source_id, sr.source_key, sr.source_updated_at DESC, sr.run_id DESC, sr.seq DESC);

INSERT INTO staging.population_duplicate (run_id, source_id, seq, kind, duplicate_of)
SELECT %(run_id)s, c.source_id, c.seq, 'unchanged_redelivery', 'source_record ' || prev.source_record_id
FROM candidate c
JOIN earlier prev ON prev.source_id = c.source_id AND prev.source_key = c.source_key
WHERE prev.row_hash = c.row_hash;

-- (by kind: the ones just found, so that when there are none — every full load — the join's hash side is empty and
-- the candidates are not read at all; 0.8 s at 1M)
DELETE FROM candidate c USING staging.population_duplicate d
WHERE d.run_id = %(run_id)s AND d.kind = 'unchanged_redelivery' AND d.source_id = c.source_id AND d.seq = c.seq;
