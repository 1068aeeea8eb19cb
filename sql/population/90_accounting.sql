-- Row accounting of the run, per source: three independent counts that must add up to what was received
-- (the table's CHECK constraint refuses a run where they do not). Each count names the run by the parameter, not by
-- e.run_id: correlated to the outer row, the run was unknown to the planner, which estimated a whole source's
-- statements and counted them through the key index (1.1 s of a 4M-resident increment for 18k statements).
INSERT INTO audit.row_accounting (run_id, source_id, received, merged, quarantined, duplicates)
SELECT e.run_id, e.source_id,
       (SELECT count(*) FROM staging.population_record s WHERE s.run_id = %(run_id)s AND s.source_id = e.source_id),
       (SELECT count(*) FROM population.source_record m WHERE m.run_id = %(run_id)s AND m.source_id = e.source_id),
       (SELECT count(*) FROM quarantine.population_record q WHERE q.run_id = %(run_id)s AND q.source_id = e.source_id),
       (SELECT count(*) FROM staging.population_duplicate d WHERE d.run_id = %(run_id)s AND d.source_id = e.source_id)
FROM audit.extract e
WHERE e.run_id = %(run_id)s
ON CONFLICT (run_id, source_id) DO UPDATE
SET received = EXCLUDED.received, merged = EXCLUDED.merged, quarantined = EXCLUDED.quarantined,
    duplicates = EXCLUDED.duplicates
