-- Duplicates: (1) several rows of the run with the same source record key: the latest (by the source's update
-- time, then extraction order) is kept, the others are superseded; (2) a kept row identical in content to the
-- latest version of that record merged by an earlier run is an unchanged re-delivery.
WITH ranked AS (
    SELECT source_id, seq, source_key,
           first_value(seq) OVER w AS kept_seq,
           row_number() OVER w AS rn
    FROM candidate
    WINDOW w AS (PARTITION BY source_id, source_key ORDER BY source_updated_at DESC, seq DESC)
)
INSERT INTO staging.population_duplicate (run_id, source_id, seq, kind, duplicate_of)
SELECT %(run_id)s, source_id, seq, 'superseded_in_run', 'seq ' || kept_seq
FROM ranked WHERE rn > 1;

DELETE FROM candidate c USING staging.population_duplicate d
WHERE d.run_id = %(run_id)s AND d.source_id = c.source_id AND d.seq = c.seq;

INSERT INTO staging.population_duplicate (run_id, source_id, seq, kind, duplicate_of)
SELECT %(run_id)s, c.source_id, c.seq, 'unchanged_redelivery', 'source_record ' || prev.source_record_id
FROM candidate c
CROSS JOIN LATERAL (
    SELECT sr.source_record_id, sr.row_hash
    FROM population.source_record sr
    WHERE sr.source_id = c.source_id AND sr.source_key = c.source_key AND sr.run_id < %(run_id)s
    ORDER BY sr.source_updated_at DESC, sr.run_id DESC, sr.seq DESC
    LIMIT 1
) prev
WHERE prev.row_hash = c.row_hash;

DELETE FROM candidate c USING staging.population_duplicate d
WHERE d.run_id = %(run_id)s AND d.source_id = c.source_id AND d.seq = c.seq;
