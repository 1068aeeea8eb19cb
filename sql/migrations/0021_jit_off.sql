-- JIT compilation off for the warehouse database (new sessions; a session may still SET jit = on).
--
-- Why: PostgreSQL compiles a query with LLVM when its estimated cost is above jit_above_cost (100,000: any
-- statement over a large table), and optimises and inlines it above 500,000 — several seconds of compilation per
-- statement, once more in each parallel worker, and nothing saved when the statement itself runs for seconds over
-- wide expressions evaluated once per row. Measured on a 1M-resident full load's reconciliation (the same
-- database and data, one run each way): the discrepancy step 10.1 -> 6.9 s (5.8 s of its 9.4 s were
-- "JIT: Optimization 3.3 s, Emission 2.2 s" for 116 functions), the whole reconciliation 208.6 -> 173.4 s and
-- 254 -> 209 CPU s of PostgreSQL. The quality gate (GX queries over the golden tables) was the same either way
-- (21.3/21.9 -> 20.0/20.9 s). The reconciliation also sets jit = off for its own transaction
-- (pipelines/reconcile/merge.py, SESSION_SETTINGS), so a database where this could not be set still gets it there.
-- Where the role may not alter the database (a server managed by others), the migration says so and goes on.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'jit not set off for database % (%): only the reconciliation turns it off for itself',
        current_database(), SQLERRM;
END $$;
