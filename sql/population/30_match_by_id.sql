-- Records with a usable identity document number match the golden person holding it; a number never seen
-- before gets a new person: its id is drawn here (new_person) and its row is written once, with its values, by the
-- SCD2 merge after survivorship (rather than inserted empty here and updated there, which wrote every person of a
-- full load twice). The persons already held are left out by an anti-join.
--
-- The ids are one block of the sequence: its first id drawn here, once, each new person's the first plus its rank,
-- then the sequence set past the block (or, with no new person, back before the first id: nothing drawn).
-- nextval() in the query itself (one draw per row) made the whole statement parallel-unsafe: run by one process,
-- while the grouping and sorting of the candidates can be split between parallel workers (merge.STEP_SETTINGS: a 1M
-- first load, 3.3 → 2.1 s). The same ids as one draw per row in this order. Person ids are drawn nowhere else, and
-- the reconciliation that draws them holds merge.RECONCILE_LOCK: no other draw can fall inside the block between
-- the statements (and one that did would fail the run on person's primary key, not merge two persons).
CREATE TEMP TABLE person_id_block ON COMMIT DROP AS SELECT nextval('population.person_id_seq') AS first_id;

CREATE TEMP TABLE new_person ON COMMIT DROP AS
SELECT (SELECT first_id FROM person_id_block) + row_number() OVER (ORDER BY n.id_number, n.id_type) - 1 AS person_id,
       n.id_type COLLATE "default" AS id_type, n.id_number COLLATE "default" AS id_number, n.valid_from
FROM (
    -- ids in the order of the unique index on the document (person_identity: number, then type; migration 0025):
    -- both of person's indexes grow at the end, and a range of ids is a range of ID numbers (the slices of a
    -- partitioned load: pipelines/reconcile/partitioned.py). The number first, not the type: the sort compares an
    -- abbreviated key of its first column, which for the type (three values) decided nothing — every comparison
    -- went on to both full values (the new persons of a 1M full load: this statement 9.4 → 7.0 s on a slow hour,
    -- the sort alone about three times faster). Sorted bytewise
    -- ("C": for UTF-8 text the order of code points, the order of any database whose collation is C.UTF-8),
    -- whichever the database's collation: its strcoll() comparisons made this sort 3 of the step's 7 s at 1M. (The
    -- order only places the index entries; nothing depends on it.) Grouped in that order, so that one sort serves
    -- the grouping and the numbering.
    SELECT c.id_number COLLATE "C" AS id_number, c.id_type COLLATE "C" AS id_type,
           min(c.source_updated_at) AS valid_from  -- (the earliest record's time)
    FROM candidate c
    WHERE c.id_number IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM population.person p
                      -- (a load into an empty warehouse holds nobody: no anti-join — merge.step_params)
                      WHERE NOT %(into_empty)s AND p.id_type = c.id_type AND p.id_number = c.id_number)
    GROUP BY 1, 2
) n;
SELECT CASE WHEN n.last_id IS NULL THEN setval('population.person_id_seq', b.first_id, false)  -- (not called)
            ELSE setval('population.person_id_seq', n.last_id) END
FROM person_id_block b, (SELECT max(person_id) AS last_id FROM new_person) n;
CREATE UNIQUE INDEX ON new_person (person_id);  -- golden joins it by id, whatever the plan
ANALYZE new_person;
