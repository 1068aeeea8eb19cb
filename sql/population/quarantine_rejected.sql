-- Every staged row of the run that broke a hard rule goes to quarantine with its reasons and raw payload (found by
-- the partial index of rejected rows, migration 0024, whose predicate this one is).
INSERT INTO quarantine.population_record (run_id, source_id, seq, department, source_key, reasons, payload, origin)
SELECT s.run_id, s.source_id, s.seq, s.department, s.source_key, s.reasons, s.payload, s.origin
FROM staging.population_record s
WHERE s.run_id = %(run_id)s
  AND s.reasons <> '{}'
