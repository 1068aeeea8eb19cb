"""SQL generated from the authority registry (数源目录): survivorship, the SCD2 merge and discrepancies.

Only identifiers (from pipelines.population.attributes) and literals (from the validated registry) are composed
into the statements, with psycopg.sql — never string formatting of values.
"""

from __future__ import annotations

from psycopg import sql

from pipelines.population.attributes import GOLDEN_ATTRIBUTES
from pipelines.registry import AttributeAuthority

PERSON_KEY_COLUMNS = ["person_id", "id_type", "id_number"]
SRC = [f"src_{a}" for a in GOLDEN_ATTRIBUTES]
VERSION_COLUMNS = [
    *PERSON_KEY_COLUMNS, *GOLDEN_ATTRIBUTES, *SRC, "row_hash", "valid_from", "created_run_id", "updated_run_id"
]


def _ids(names: list[str], prefix: str | None = None) -> sql.Composable:
    if prefix:
        return sql.SQL(", ").join(sql.Identifier(prefix, n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


# A person's current statements: those its crosswalk rows name (unless own_statements, below)
_CURRENT_STATEMENT = "JOIN population.source_record sr ON sr.source_record_id = x.current_record_id"

# A statement's position among a person's current statements, latest first, is below POSITION_SPAN; an attribute's
# key is rank(department) * POSITION_SPAN + position, so the smallest key is the winner.
POSITION_SPAN = 1_000_000


def department_rank(order: list[str] | tuple[str, ...]) -> sql.Composed:
    """A statement's department's place in an attribute's authority ``order`` (1 for the first), NULL for a
    department the order does not name: what ``array_position(order, department)`` returns, spelled as a CASE of
    literals — the golden query evaluates it for every attribute of every current statement (34 million times at a
    million residents), and a CASE of text equalities costs about half of array_position's call on a constant array
    (32 against 57 ns a value, on one core, 1.9M statements)."""
    if not order:
        return sql.SQL("NULL::int")
    return sql.SQL("CASE s.department {whens} END").format(whens=sql.SQL(" ").join(
        sql.SQL("WHEN {d} THEN {i}").format(d=sql.Literal(d), i=sql.Literal(i))
        for i, d in enumerate(order, start=1)))


def golden_query(authorities: list[AttributeAuthority], every_person: bool = False,
                 own_statements: bool = False) -> sql.Composed:
    """For every touched person, each attribute's value and source record, by the authority's order.

    ``every_person``: the run touches every person the crosswalk names (a first load: the crosswalk was empty
    before the run's statements), so the statements are read without the join to ``touched``. That join is the
    only temporary table below the aggregate; without it the scans, the join and the sort run in parallel workers
    (Gather Merge under the window), the leader keeping the window and the aggregate: at 500k residents the golden
    step took 10.1–10.9 s instead of 12.4–13.9 s (four alternating pairs on one database, identical golden rows).

    ``own_statements``: every statement the transaction sees is its key's current one and names its person (a
    slice of a load into an empty warehouse, pipelines/reconcile/partitioned.py, which sees only the statements it
    wrote, one per key), so the statements are read alone, without the crosswalk: that join, a parallel hash of a
    slice's statements, was about 4 of a slice's 11 s at 1M.

    A person's current statements are those its crosswalk rows name (``person_xref.current_record_id``: a key's
    crosswalk row carries the person of the key's latest statement). The join goes from the persons to the
    crosswalk to the statements, each step on one key the planner can estimate; a join of the statements to the
    crosswalk on both the record key and the statement id was estimated at one row (the two conditions taken as
    independent) and planned as a nested loop over a million rows.

    Within the ordered departments the latest statement that has a value wins (a department's newer record that
    says nothing about an attribute does not erase what its older record said). Latest by the source update time,
    then the run; then the first source by id and the latest record of its delivery (seq): an order the inputs
    decide. Statements of one department stamped with the same time (a batch time, a file drop's date) are common
    in departments' systems, and the statement id, which broke such ties before, follows the order a run's
    candidates were written in — in a parallel plan not the same from one load of the same input to the next.

    One sort for all attributes: each current statement of a touched person gets its position among the person's
    statements, latest (in that order) first; an attribute's winner is the statement with
    the smallest rank(department) * POSITION_SPAN + position among those with a value, a plain min() per attribute
    rather than an ORDER BY inside each of 2 × 18 aggregates (which sorted every person's statements 36 times:
    the golden step's whole cost at a million residents). The values (one ``population.golden_values`` composite per
    statement, migration 0029: one array a person instead of one per attribute — the aggregate over a slice of a
    1M load 2.7–3.9 → 1.7–2.2 s) and the ids are gathered into arrays in the order
    the rows arrive, with the positions in the same order beside them, so the winner is found by its position
    whatever that order is (in the order the window delivers them, position p is at index p: checked with one
    subscript, and searched for only when it is not — 3–4 s of 35 at 1M). Each winner's place is computed once, in a
    subquery the planner may not pull up (OFFSET 0), and both the value and the statement id are taken at it: pulled
    up, the place's expression was copied into both picks and evaluated twice per attribute (the same golden rows,
    every column compared, in 28–32 s instead of 31–37 s at 1M on a busy machine). Only the columns it needs are
    sorted (not the statements' keys, hashes and identity columns: a third of a statement's width, sorted on disk at
    a million residents).
    """
    aggregates = [sql.SQL("array_agg(s.pos) AS pos_"), sql.SQL("array_agg(s.source_record_id) AS ids_"),
                  sql.SQL("array_agg(ROW({values})::population.golden_values) AS vals_").format(
                      values=_ids(GOLDEN_ATTRIBUTES, "s"))]
    places, picks = [], []
    for auth in authorities:
        col = sql.Identifier("s", auth.attribute)
        rank = department_rank(auth.order)
        key = sql.Identifier(f"k_{auth.attribute}")
        at = sql.Identifier(f"at_{auth.attribute}")
        aggregates.append(sql.SQL(
            "min({rank}::bigint * {span} + s.pos) FILTER (WHERE {col} IS NOT NULL) AS {key}"
        ).format(rank=rank, span=sql.Literal(POSITION_SPAN), col=col, key=key))
        # the winner's place in the arrays: its position itself when the rows arrived in position order (as the
        # window's sort delivers them: one subscript), else found by searching the positions
        pos = sql.SQL("(a.{key} % {span})::int").format(key=key, span=sql.Literal(POSITION_SPAN))
        places.append(sql.SQL("CASE WHEN a.pos_[{pos}] = {pos} THEN {pos} ELSE array_position(a.pos_, {pos}) "
                              "END AS {at}").format(pos=pos, at=at))
        picks.append(sql.SQL("(b.vals_[b.{at}]).{name} AS {name}").format(at=at, name=sql.Identifier(auth.attribute)))
        picks.append(sql.SQL("b.ids_[b.{at}] AS {name}").format(at=at, name=sql.Identifier(f"src_{auth.attribute}")))
    # row_hash: the hash of the person's identity and values (what SCD2 compares), taken on the way in, by the same
    # function as a statement's (population.values_hash, migration 0022: its arguments are the identity, then the
    # golden attributes in this order)
    return sql.SQL(
        "CREATE TEMP TABLE golden ON COMMIT DROP AS "
        "SELECT g.*, CASE WHEN coalesce(p.person_id, n.person_id) IS NOT NULL "
        "THEN population.values_hash(coalesce(p.id_type, n.id_type), coalesce(p.id_number, n.id_number), {vals}) END "
        "AS row_hash, n.person_id IS NOT NULL AS new_person, n.id_type AS new_id_type, n.id_number AS new_id_number "
        "FROM (SELECT b.person_id, {picks}, b.first_update, b.last_update "
        "      FROM (SELECT a.person_id, a.ids_, a.vals_, {places}, a.first_update, a.last_update "
        "            FROM (SELECT s.person_id, {aggregates}, min(s.source_updated_at) AS first_update, "
        "                         max(s.source_updated_at) AS last_update "
        "                  FROM (SELECT {needed}, row_number() OVER (PARTITION BY sr.person_id "
        "                               ORDER BY sr.source_updated_at DESC, sr.run_id DESC, sr.source_id, "
        "                                        sr.seq DESC) AS pos "
        "                        FROM {statements}) s "
        "                  GROUP BY s.person_id) a "
        "            OFFSET 0) b) g "  # (see the docstring: each winner's place computed once)
        "LEFT JOIN population.person p ON p.person_id = g.person_id "
        "LEFT JOIN new_person n ON n.person_id = g.person_id"
    ).format(statements=sql.SQL(
                 "population.source_record sr" if own_statements
                 else f"population.person_xref x {_CURRENT_STATEMENT}" if every_person
                 else f"touched t JOIN population.person_xref x USING (person_id) {_CURRENT_STATEMENT}"),
             picks=sql.SQL(", ").join(picks), places=sql.SQL(", ").join(places),
             aggregates=sql.SQL(", ").join(aggregates), vals=_ids(GOLDEN_ATTRIBUTES, "g"),
             needed=_ids(["person_id", "source_record_id", "source_updated_at", "department", *GOLDEN_ATTRIBUTES], "sr"))


def scd2_merge() -> sql.Composed:
    """Write the run's new persons (new_person, drawn by the match on ID) with their values and first version;
    close the current version and open a new one for every held person whose values changed; keep the lineage
    pointers of unchanged persons current. valid_from is the time the departments recorded the change (a new
    person: its earliest current statement).

    A new person without any current statement (its only record lost to a later statement of the same record
    key, under another number) is written empty (row_hash '') and retired below, as before it had values.

    The new persons' rows are taken from the golden rows alone (the golden query carries their identity from
    new_person), not from a join of the golden rows with new_person per statement (a hash join of a million rows
    each, for the persons and for their first versions).

    The new persons are written in the order of the golden rows, which the golden query made in person_id order
    (its window and aggregate sort by person): the primary key grows at its end without sorting the wide rows
    again (an ORDER BY here sorted a million golden rows on disk: 13.5 s of a full load's person insert, the
    history's insert of the same rows 6.8 s).

    A changed person's new version number is the one after the version its close just ended (read back from that
    UPDATE into ``closed``), not a max() probe of the history's primary key per changed person (89k buffer visits
    for the 13k changed persons of a daily run on a 4M-resident warehouse, auto_explain); a person without an open
    version to close (written empty before) still gets the next number after whatever versions it has.

    With ``%(into_empty)s`` (merge.step_params: the slices of a load into an empty warehouse) the look-ups of
    changed, relinked and orphaned persons are not run: there every golden person is new and none is orphaned."""
    set_values = sql.SQL(", ").join(
        sql.SQL("{c} = g.{c}").format(c=sql.Identifier(c)) for c in [*GOLDEN_ATTRIBUTES, *SRC]
    )
    set_src = sql.SQL(", ").join(sql.SQL("{c} = g.{c}").format(c=sql.Identifier(c)) for c in SRC)
    src_differs = sql.SQL(" OR ").join(
        sql.SQL("p.{c} IS DISTINCT FROM g.{c}").format(c=sql.Identifier(c)) for c in SRC
    )
    return sql.SQL(
        """
        INSERT INTO population.person ({cols})
        SELECT g.person_id, g.new_id_type, g.new_id_number, {gvals}, g.row_hash, g.first_update, %(run_id)s, %(run_id)s
        FROM golden g WHERE g.new_person;

        INSERT INTO population.person (person_id, id_type, id_number, row_hash, valid_from, created_run_id,
                                       updated_run_id)
        SELECT n.person_id, n.id_type, n.id_number, '', n.valid_from, %(run_id)s, %(run_id)s
        FROM new_person n
        WHERE NOT EXISTS (SELECT 1 FROM golden g WHERE g.person_id = n.person_id);

        INSERT INTO population.person_history ({cols}, valid_to, version)
        SELECT g.person_id, g.new_id_type, g.new_id_number, {gvals}, g.row_hash, g.first_update, %(run_id)s,
               %(run_id)s, NULL, 1
        FROM golden g WHERE g.new_person;

        CREATE TEMP TABLE changed ON COMMIT DROP AS
        SELECT g.person_id,
               CASE WHEN p.row_hash = '' THEN g.first_update
                    ELSE greatest(g.last_update, p.valid_from + interval '1 microsecond') END AS new_valid_from,
               p.row_hash = '' AS is_new
        FROM golden g JOIN population.person p USING (person_id)
        WHERE NOT g.new_person AND p.row_hash IS DISTINCT FROM g.row_hash
          -- (in an empty warehouse every golden person is new: not even scanned)
          AND NOT %(into_empty)s;

        CREATE TEMP TABLE closed (person_id bigint PRIMARY KEY, version integer NOT NULL) ON COMMIT DROP;
        WITH closing AS (
            UPDATE population.person_history h SET valid_to = c.new_valid_from
            FROM changed c
            WHERE h.person_id = c.person_id AND h.valid_to IS NULL AND NOT c.is_new
            RETURNING h.person_id, h.version
        )
        INSERT INTO closed SELECT person_id, max(version) FROM closing GROUP BY person_id;

        UPDATE population.person p
        SET {set_values}, row_hash = g.row_hash, valid_from = c.new_valid_from, updated_run_id = %(run_id)s
        FROM golden g JOIN changed c USING (person_id)
        WHERE p.person_id = g.person_id;

        INSERT INTO population.person_history ({cols}, valid_to, version)
        SELECT {pcols}, NULL,
               coalesce(v.version, (SELECT max(h.version) FROM population.person_history h
                                    WHERE h.person_id = p.person_id), 0) + 1
        FROM population.person p JOIN changed c USING (person_id)
        LEFT JOIN closed v USING (person_id);

        CREATE TEMP TABLE relinked ON COMMIT DROP AS
        SELECT g.* FROM golden g JOIN population.person p USING (person_id)
        WHERE NOT g.new_person AND p.row_hash = g.row_hash AND ({src_differs})
          AND NOT EXISTS (SELECT 1 FROM changed c WHERE c.person_id = g.person_id)
          AND NOT %(into_empty)s;
        UPDATE population.person p SET {set_src} FROM relinked g WHERE p.person_id = g.person_id;
        UPDATE population.person_history p SET {set_src}
        FROM relinked g WHERE p.person_id = g.person_id AND p.valid_to IS NULL;

        CREATE TEMP TABLE orphaned ON COMMIT DROP AS
        SELECT p.person_id, p.id_type, p.id_number,
               greatest(p.valid_from + interval '1 microsecond',
                        (SELECT max(source_updated_at) FROM candidate)) AS retired_at,
               -- (an orphaned person has no current statement: the keys of its statements now name others)
               (SELECT min(x.person_id) FROM population.source_record sr
                JOIN population.person_xref x USING (source_id, source_key)
                WHERE sr.person_id = p.person_id AND x.person_id <> p.person_id
               ) AS successor_person_id
        FROM touched t JOIN population.person p USING (person_id)
        WHERE NOT EXISTS (SELECT 1 FROM golden g WHERE g.person_id = t.person_id)
          -- (golden has a row for a subset of touched: as many rows, no orphan — a full load's million persons
          --  are not searched for one)
          AND (SELECT count(*) FROM touched) <> (SELECT count(*) FROM golden)
          -- (nobody to orphan in an empty warehouse, and touched is left empty there)
          AND NOT %(into_empty)s;

        UPDATE population.person_history h SET valid_to = o.retired_at
        FROM orphaned o WHERE h.person_id = o.person_id AND h.valid_to IS NULL;
        INSERT INTO population.person_retired (person_id, id_type, id_number, successor_person_id, reason, run_id,
                                               retired_at)
        SELECT person_id, id_type, id_number, successor_person_id, 'ID_CORRECTED_AT_SOURCE', %(run_id)s, retired_at
        FROM orphaned
        ON CONFLICT (person_id) DO NOTHING;
        DELETE FROM population.person p USING orphaned o WHERE p.person_id = o.person_id;
        """
    ).format(
        set_values=set_values,
        cols=_ids(VERSION_COLUMNS),
        pcols=_ids(VERSION_COLUMNS, "p"),
        gvals=_ids([*GOLDEN_ATTRIBUTES, *SRC], "g"),
        src_differs=src_differs,
        set_src=set_src,
    )


def discrepancy_query(authorities: list[AttributeAuthority], every_person: bool = False,
                      own_statements: bool = False) -> sql.Composed:
    """Every current statement of a touched person whose value for a compared attribute differs from the golden
    value where that value came from the authority (a fallback value is no basis for a 比对).

    ``every_person``: a slice of a load into an empty warehouse (pipelines/reconcile/partitioned.py), whose
    transaction sees only the persons it writes — every one of them touched: the persons are read without
    ``touched`` (which 50_statements leaves empty there). ``own_statements``: as :func:`golden_query`'s — a
    person's statements are found by their person, not through the crosswalk.

    One pass: each current statement of a touched person is first tested against the golden values of every
    compared attribute at once (one OR of the comparisons: most statements agree on everything and go no further),
    then a statement that differs somewhere is set against each attribute (a LATERAL list of attributes), and only
    a differing pair looks up the authority's statement.

    With ``own_statements`` (a slice, whose statements have no primary key yet: partitioned.SLICE_DROP) the
    differing pairs are written first, analysed, and only then joined with the authorities' statements: in one
    statement the planner, which cannot estimate the OR of the comparisons, expected about 790k pairs
    (22k found at 1M residents) and hashed every statement of the slice to look them up; told the count, it
    hashes the pairs and scans the statements once (1M full load in the lab, alternating on copies of one staged
    run, three rounds: the discrepancies' step 2.6–3.3 → 2.1–2.7 s a slice, the reconciliation 76–86 → 70–76 CPU s).
    """
    pairs, differs = [], []
    for auth in authorities:
        if not auth.compare:
            continue
        a = sql.Identifier(auth.attribute)
        differs.append(sql.SQL("(sr.{a} IS NOT NULL AND sr.{a} IS DISTINCT FROM p.{a} AND sr.department <> {authority})")
                       .format(a=a, authority=sql.Literal(auth.authority)))
        pairs.append(sql.SQL(
            "({name}, {authority}, p.{src}, sr.{a}::text, p.{a}::text, "
            "sr.{a} IS NOT NULL AND sr.{a} IS DISTINCT FROM p.{a})"
        ).format(name=sql.Literal(auth.attribute), authority=sql.Literal(auth.authority),
                 src=sql.Identifier(f"src_{auth.attribute}"), a=a))
    return sql.SQL(
        """
        {found}

        INSERT INTO population.discrepancy (person_id, attribute, department, source_id, source_key, department_value,
            authority_department, authority_value, authority_source_key, status, first_run_id, last_run_id)
        SELECT person_id, attribute, department, source_id, source_key, department_value, authority_department,
               authority_value, authority_source_key, 'open', %(run_id)s, %(run_id)s
        FROM found_discrepancy
        ON CONFLICT (person_id, attribute, source_id) DO UPDATE
        SET source_key = EXCLUDED.source_key, department_value = EXCLUDED.department_value,
            authority_value = EXCLUDED.authority_value, authority_source_key = EXCLUDED.authority_source_key,
            status = 'open',
            first_run_id = CASE WHEN population.discrepancy.status = 'open'
                                THEN least(population.discrepancy.first_run_id, EXCLUDED.first_run_id)
                                ELSE EXCLUDED.first_run_id END,
            last_run_id = greatest(population.discrepancy.last_run_id, EXCLUDED.last_run_id);

        UPDATE population.discrepancy d SET status = 'resolved', last_run_id = greatest(d.last_run_id, %(run_id)s)
        FROM {touched} t
        WHERE d.person_id = t.person_id AND d.status = 'open'
          AND NOT EXISTS (SELECT 1 FROM found_discrepancy f
                          WHERE f.person_id = d.person_id AND f.attribute = d.attribute AND f.source_id = d.source_id);
        """
    ).format(found=(_FOUND_PAIRS_FIRST if own_statements else _FOUND_AT_ONCE).format(
                 pairs=sql.SQL(", ").join(pairs), any_differs=sql.SQL(" OR ").join(differs),
                 statements=sql.SQL(
                     "JOIN population.source_record sr ON sr.person_id = p.person_id" if own_statements
                     else f"JOIN population.person_xref x ON x.person_id = p.person_id {_CURRENT_STATEMENT}"),
                 persons=sql.SQL("population.person p" if every_person
                                 else "population.person p JOIN touched t USING (person_id)")),
             touched=sql.SQL("population.person" if every_person else "touched"))


# discrepancy_query's differing pairs: of each person's statements, each compared attribute's that differs from
# the golden value, with the statement its golden value came from (src) ...
_PAIRS = """
        FROM {persons}
        {statements}
        CROSS JOIN LATERAL (VALUES {pairs})
            AS d(attribute, authority, src, department_value, authority_value, differs)"""
_PAIRS_WHERE = "WHERE ({any_differs}) AND d.differs AND sr.department <> d.authority"
# ... joined with that statement where it is the authority's (a fallback value is no basis for a 比对): at once ...
_FOUND_AT_ONCE = sql.SQL("""
        CREATE TEMP TABLE found_discrepancy ON COMMIT DROP AS
        SELECT p.person_id, d.attribute, sr.department, sr.source_id, sr.source_key, d.department_value,
               d.authority AS authority_department, d.authority_value, au.source_key AS authority_source_key"""
                         + _PAIRS + """
        JOIN population.source_record au ON au.source_record_id = d.src AND au.department = d.authority
        """ + _PAIRS_WHERE + ";")
# ... or once the pairs are counted (own_statements: a slice's statements have no primary key)
_FOUND_PAIRS_FIRST = sql.SQL("""
        CREATE TEMP TABLE found_pair ON COMMIT DROP AS
        SELECT p.person_id, d.attribute, sr.department, sr.source_id, sr.source_key, d.department_value,
               d.authority, d.authority_value, d.src""" + _PAIRS + """
        """ + _PAIRS_WHERE + """;
        ANALYZE found_pair;
        CREATE TEMP TABLE found_discrepancy ON COMMIT DROP AS
        SELECT f.person_id, f.attribute, f.department, f.source_id, f.source_key, f.department_value,
               f.authority AS authority_department, f.authority_value, au.source_key AS authority_source_key
        FROM found_pair f
        JOIN population.source_record au ON au.source_record_id = f.src AND au.department = f.authority;""")
