-- Schema population_work: the working tables of a first load reconciled in slices (pipelines/reconcile/partitioned.py).
-- The match (candidates, duplicates, new persons, evidence) writes its tables here, unlogged, instead of as
-- temporary tables: every slice's backend then reads its slice of them through a view, where each other backend
-- was handed its slice by a copy streamed through the client first (5 s of both cores at 1M), and the match's own
-- scans of them may run in parallel workers (a temporary table is private to its session: never). Emptied when the
-- load ends, and by the undoing of an unfinished one; never read by anyone else.
CREATE SCHEMA IF NOT EXISTS population_work;
COMMENT ON SCHEMA population_work IS '实有人口库工作区: unlogged working tables of a first load reconciled in slices; emptied at its end';
