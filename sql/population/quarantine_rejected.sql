-- Every staged row of the run that broke a hard rule goes to quarantine with its reasons and raw payload.
INSERT INTO quarantine.population_record (run_id, source_id, seq, department, source_key, reasons, payload, origin)
SELECT s.run_id, s.source_id, s.seq, s.department, s.source_key, c.reasons, s.payload, s.origin
FROM staging.population_record s
JOIN staging.population_checked c USING (run_id, source_id, seq)
WHERE s.run_id = %(run_id)s
  AND cardinality(c.reasons) > 0
