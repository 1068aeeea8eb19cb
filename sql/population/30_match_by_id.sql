-- Records with a usable identity document number match the golden person holding it; a number never seen
-- before gets a new person: its id is drawn here (new_person) and its row is written once, with its values, by the
-- SCD2 merge after survivorship (rather than inserted empty here and updated there, which wrote every person of a
-- full load twice). The persons already held are left out by an anti-join.
CREATE TEMP TABLE new_person ON COMMIT DROP AS
SELECT nextval('population.person_id_seq') AS person_id, n.id_type, n.id_number, n.valid_from
FROM (
    SELECT c.id_type, c.id_number, min(c.source_updated_at) AS valid_from  -- (the earliest record's time)
    FROM candidate c
    WHERE c.id_number IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM population.person p
                      -- (a load into an empty warehouse holds nobody: no anti-join — merge.step_params)
                      WHERE NOT %(into_empty)s AND p.id_type = c.id_type AND p.id_number = c.id_number)
    GROUP BY c.id_type, c.id_number
    -- ids in the order of the unique index on the document (person_identity: number, then type; migration 0025):
    -- both of person's indexes grow at the end, and a range of ids is a range of ID numbers (the slices of a
    -- partitioned load: pipelines/reconcile/partitioned.py). The number first, not the type: the sort compares an
    -- abbreviated key of its first column, which for the type (three values) decided nothing — every comparison
    -- went on to both full values (the new persons of a 1M full load: this statement 9.4 → 7.0 s on a slow hour,
    -- the sort alone about three times faster). Sorted bytewise
    -- ("C": for UTF-8 text the order of code points, the order of any database whose collation is C.UTF-8),
    -- whichever the database's collation: its strcoll() comparisons made this sort 3 of the step's 7 s at 1M. (The
    -- order only places the index entries; nothing depends on it.)
    ORDER BY c.id_number COLLATE "C", c.id_type COLLATE "C"
) n;
CREATE UNIQUE INDEX ON new_person (person_id);  -- golden joins it by id, whatever the plan
ANALYZE new_person;
