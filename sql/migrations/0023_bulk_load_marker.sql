-- A first load reconciled in partitions (pipelines/reconcile/partitioned.py) commits in several transactions: the
-- drops of the bulk path's indexes, keys, foreign keys and triggers first, then each partition's statements,
-- persons and history, then the main transaction that restores the dropped objects. This row is written with the
-- drops and deleted in the transaction that restores them: while it exists, a load into an empty warehouse has
-- not finished, and the next reconciliation (or the failed one's own clean-up) empties the golden tables — which
-- were empty when the row was written — and restores the objects from the statements it lists.
CREATE TABLE population.bulk_load (
    run_id     bigint PRIMARY KEY REFERENCES audit.run (run_id),
    started_at timestamptz NOT NULL DEFAULT now(),
    restore    text[] NOT NULL  -- statements that create the dropped objects again, in order
);
COMMENT ON TABLE population.bulk_load IS
    'An unfinished partitioned first load: the golden tables are emptied and these objects restored before any later run';
