-- pg_prewarm (PostgreSQL's contrib, in every Debian server package and the postgis image) lets a full load put the
-- indexes it rebuilt into the buffer pool: CREATE INDEX writes an index around shared_buffers, so after a bulk
-- load the indexes a daily run probes are only in the OS file cache, which the kernel may drop (on the project's
-- machines it pages out file cache idle for a minute), and the next day's increment then read them back one random
-- page at a time (pipelines/reconcile/merge.py, PREWARM). Optional: where the extension is not installed or the
-- role may not create it, the load skips the prewarm and says so in its log.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_prewarm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_prewarm;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pg_prewarm not created (%): a full load will not prewarm its rebuilt indexes', SQLERRM;
END $$;
