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
