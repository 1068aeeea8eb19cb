"""population.norm_text (migration 0010's fast path) gives exactly what the original expression of migration 0006
gives, on tricky strings (full-width, ideographic space, tabs, newlines, NBSP and other Unicode spaces, empty, NULL)
and on random mixes of them."""

from __future__ import annotations

import random
import re

import pytest

from pipelines.settings import settings
from pipelines.warehouse import connect

pytestmark = pytest.mark.integration

FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
SPACES = " \t\n\r\x0b\x0c\u00a0\u1680\u2000\u2001\u2002\u2007\u2008\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff\x85"
OTHER = "abcXYZ019-_.,;'\"\\[]^张三李四王五浦东新区上海市黄浦区南京东路弄号室é"


def original_norm_text() -> str:
    """The body of norm_text as migration 0006 wrote it, with ``t`` as a parameter."""
    text = (settings.project_root / "sql" / "migrations" / "0006_normalisation_functions.sql").read_text("utf-8")
    body = re.search(r"CREATE FUNCTION population\.norm_text\(t text\).*?SELECT (.*?)\n\$\$;", text, re.S).group(1)
    return body.replace("%", "%%").replace("translate(t,", "translate(%(t)s::text,")  # '%' is in the list


def samples() -> list[str | None]:
    fixed = [None, "", " ", "  ", "a", " a", "a ", " a  b ", "a\tb", "a\nb", "a\r\nb", "\u00a0x\u00a0", "\u2028",
             "\u3000", "\u3000\u3000张三\u3000", "ＡＢＣ１２３", "ａ　ｂ", "！～", "＼［］＾－", "张 三", "x\u200by",
             "310101", "上海市黄浦区南京东路100弄5号301室", FULL_WIDTH, SPACES, OTHER]
    rng = random.Random(20260101)
    pool = FULL_WIDTH + SPACES + OTHER
    fixed += ["".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    return fixed


def test_norm_text_fast_path_agrees_with_the_original(warehouse_db):
    values = samples()
    original = original_norm_text()
    with connect(warehouse_db) as conn:
        got = [conn.execute("SELECT population.norm_text(%(t)s::text), " + original, {"t": v}).fetchone()
               for v in values[:40]]
        assert all(a == b for a, b in got), [(v, a, b) for v, (a, b) in zip(values, got) if a != b]
        rows = conn.execute(
            "SELECT t, population.norm_text(t), " + original.replace("%(t)s::text", "t")
            + " FROM unnest(%(v)s::text[]) AS t", {"v": values}).fetchall()
    assert len(rows) == len(values)
    differ = [(t, new, old) for t, new, old in rows if new != old]
    assert differ == []
    # the fast path is taken by most realistic values, the slow path by the others: both were exercised
    assert any(t and not re.search(r"\s|[\uff01-\uff5e\u3000]", t) for t, _, _ in rows)
    assert sum(1 for t, new, _ in rows if t is not None and new != t) > 100


def original_function(name: str) -> str:
    """Migration 0006's definition of population.<name>, as a function pg_temp.<name>_0006."""
    text = (settings.project_root / "sql" / "migrations" / "0006_normalisation_functions.sql").read_text("utf-8")
    body = re.search(rf"(CREATE FUNCTION population\.{name}\(.*?\n\$\$;)", text, re.S).group(1)
    return body.replace(f"population.{name}(", f"pg_temp.{name}_0006(", 1)


def test_norm_name_and_status_agree_with_the_original(warehouse_db):
    """Migration 0020 normalises each argument once: the results are those of migration 0006's definitions."""
    values = samples() + ["张 三", " 张\u3000三 ", "john smith", "Ｊｏｈｎ　Ｓｍｉｔｈ", "李 Smith", "㐀x", "\u9fff a"]
    statuses = [None, "", " ", "死亡", "dead", " Deceased ", "２", "注销(死亡)", "迁出", "moved_out", "3", "注销(迁出)",
                "正常", "ACTIVE", "1", "在册", "其他", "x"]
    events = [None, "", "death", " 死亡 ", "DEATH", "死亡注销", "出生"]
    with connect(warehouse_db) as conn, conn.transaction():
        for name in ("norm_name", "norm_population_status"):
            conn.execute(original_function(name))
        differ = conn.execute(
            "SELECT t FROM unnest(%(v)s::text[]) AS t"
            " WHERE population.norm_name(t) IS DISTINCT FROM pg_temp.norm_name_0006(t)", {"v": values}).fetchall()
        assert differ == []
        rows = conn.execute(
            "SELECT s, e, d, population.norm_population_status(s, e, d), pg_temp.norm_population_status_0006(s, e, d)"
            " FROM unnest(%(s)s::text[]) AS s, unnest(%(e)s::text[]) AS e, unnest(ARRAY[NULL, '2026-01-02']::date[]) AS d",
            {"s": statuses, "e": events}).fetchall()
    assert len(rows) == len(statuses) * len(events) * 2
    assert [r for r in rows if r[3] != r[4]] == []
    assert {r[3] for r in rows} == {None, "deceased", "moved_out", "active"}


MARITAL = [None, "", " ", "未婚", "10", "single", "已婚", "结婚", "初婚", "再婚", "复婚", "２０", "Married", "丧偶",
           "30", "widowed", "离婚", " 40 ", "divorced", "其他", "x"]


def test_norm_marital_status_agrees_with_the_original(warehouse_db):
    """Migration 0028 keeps the marital status codes in marital_status_code: norm_marital_status gives what
    migration 0006's definition gave."""
    with connect(warehouse_db) as conn, conn.transaction():
        conn.execute(original_function("norm_marital_status"))
        rows = conn.execute(
            "SELECT t, population.norm_marital_status(t), pg_temp.norm_marital_status_0006(t)"
            " FROM unnest(%(v)s::text[]) AS t", {"v": MARITAL + samples()}).fetchall()
    assert [r for r in rows if r[1] != r[2]] == []
    assert {r[1] for r in rows} == {None, "10", "20", "30", "40"}


def test_plain_rows_normalise_to_themselves(warehouse_db):
    """A value the extract calls plain (pipelines.sources.records.is_plain of a payload holding it) is what every
    normalisation function gives with plain = true, as with the full normalisation; with plain false or NULL the
    two-argument functions are the one-argument ones (migration 0028)."""
    from pipelines.sources.records import canonical_utf8, is_plain

    values = samples() + MARITAL + ["张 三", "john smith", "Ｊｏｈｎ", "李Smith", "约翰·史密斯", "正常", "死亡", "DEATH",
                                    "a\"b", "a\\b", "x\u0085", "\u00a0", "\ufeff", "é"]
    flags = [is_plain(canonical_utf8({"field": v})) if v is not None else True for v in values]
    assert 0 < sum(flags) < len(values)  # (both kinds present)
    statuses = [None, "", "正常", "死亡", "2", "active", "迁出", " 迁出", "ＡＣＴＩＶＥ", "death"]
    with connect(warehouse_db) as conn:
        rows = conn.execute(
            "SELECT t, p,"
            " population.norm_text(t, p) IS NOT DISTINCT FROM population.norm_text(t),"
            " population.norm_name(t, p) IS NOT DISTINCT FROM population.norm_name(t),"
            " population.norm_marital_status(t, p) IS NOT DISTINCT FROM population.norm_marital_status(t),"
            " NOT p OR population.norm_text(t) IS NOT DISTINCT FROM nullif(t, '')"
            " FROM unnest(%(v)s::text[], %(f)s::boolean[]) AS x(t, p)"
            " UNION ALL SELECT t, p, population.norm_text(t, p) IS NOT DISTINCT FROM population.norm_text(t),"
            " population.norm_name(t, p) IS NOT DISTINCT FROM population.norm_name(t),"
            " population.norm_marital_status(t, p) IS NOT DISTINCT FROM population.norm_marital_status(t), true"
            " FROM unnest(%(v)s::text[]) AS t, unnest(ARRAY[false, NULL]::boolean[]) AS p",
            {"v": values, "f": flags}).fetchall()
        assert len(rows) == 3 * len(values)
        assert [r for r in rows if not all(r[2:])] == []
        plain_statuses = [s for s in statuses if s is None or is_plain(canonical_utf8({"s": s}))]
        status_rows = conn.execute(
            "SELECT s, e, population.norm_population_status(s, e, d, true),"
            " population.norm_population_status(s, e, d)"
            " FROM unnest(%(s)s::text[]) AS s, unnest(%(s)s::text[]) AS e,"
            " unnest(ARRAY[NULL, '2026-01-02']::date[]) AS d", {"s": plain_statuses}).fetchall()
    assert [r for r in status_rows if r[2] != r[3]] == []
    assert {r[3] for r in status_rows} >= {"deceased", "moved_out", "active"}


def test_department_rank_agrees_with_array_position(warehouse_db):
    """survivorship.department_rank (a CASE of literals) gives what array_position(order, department) gave, for
    every authority order of the registry and for a department it names, one it does not, an empty one and NULL."""
    from psycopg import sql

    from pipelines.reconcile.survivorship import department_rank
    from pipelines.registry import load_authority

    orders = {tuple(a.order) for a in load_authority()} | {("psb", "psb", "hrss"), ()}
    departments = sorted({d for order in orders for d in order}) + ["samr", "", "PSB"]
    with connect(warehouse_db) as conn:
        for order in orders:
            query = sql.SQL("SELECT s.department, {rank}, array_position({order}::text[], s.department)"
                            " FROM unnest(%s::text[]) AS s(department)").format(
                rank=department_rank(order), order=sql.Literal(list(order)))
            for department, rank, expected in conn.execute(query, ([*departments, None],)).fetchall():
                assert rank == expected, (order, department)


def test_golden_values_type_follows_the_golden_attributes(warehouse_db):
    """population.golden_values (migration 0029), the composite the golden query gathers a person's statements'
    values in: the golden attributes in their order, each with its type in population.source_record (and in
    population.person, where the winners are written)."""
    from pipelines.population.attributes import GOLDEN_ATTRIBUTES

    def columns(relation: str) -> list[tuple[str, str]]:
        return conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (relation,)).fetchall()

    with connect(warehouse_db) as conn:
        (type_relation,) = conn.execute(
            "SELECT typrelid::regclass::text FROM pg_type WHERE oid = 'population.golden_values'::regtype").fetchone()
        values = columns(type_relation)
        assert [name for name, _ in values] == GOLDEN_ATTRIBUTES
        for table in ("population.source_record", "population.person"):
            typed = dict(columns(table))
            assert values == [(name, typed[name]) for name in GOLDEN_ATTRIBUTES], table
