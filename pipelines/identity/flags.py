"""Reason and warning codes carried as bit masks through the checks, rendered once as PostgreSQL ``text[]`` literals.

Bit *i* of a reasons mask is ``pipelines.reasons.REASONS[i]`` (of a warnings mask, ``WARNINGS[i]``), so the order
in a literal is the order of ``pipelines/reasons.py``. Rendering looks at the distinct masks only (a handful per
batch), never at each row.
"""

from __future__ import annotations

import numpy as np

from pipelines.reasons import REASONS, WARNINGS

R = {code: np.int64(1) << np.int64(i) for i, code in enumerate(REASONS)}
W = {code: np.int64(1) << np.int64(i) for i, code in enumerate(WARNINGS)}


def mask(flags: dict[str, np.int64], code: str, where: np.ndarray) -> np.ndarray:
    """int64 array: the code's bit where ``where`` is True, else 0."""
    return np.where(where, flags[code], np.int64(0))


def _code_table(bits: np.ndarray, codes: list[str]) -> dict[int, list[str]]:
    """Per distinct mask present (a handful per batch), the codes whose bits it sets, in ``codes`` order."""
    return {int(b): [c for i, c in enumerate(codes) if (int(b) >> i) & 1] for b in np.unique(bits)}


def to_pg_array(bits: np.ndarray, codes: list[str]) -> np.ndarray:
    """Object array of literals such as ``'{}'`` or ``'{ID_BAD_CHECK_DIGIT,SEX_MISMATCH}'``, ready for COPY.

    One literal is built per distinct mask present, then taken for every row.
    """
    bits = np.asarray(bits, dtype=np.int64)
    if len(bits) == 0:
        return np.array([], dtype=object)
    table = np.full(int(bits.max()) + 1, None, dtype=object)
    for b, listed in _code_table(bits, codes).items():
        table[b] = "{" + ",".join(listed) + "}"
    return table[bits]


def to_code_lists(bits: np.ndarray, codes: list[str]) -> list[list[str]]:
    """Per row, the list of codes whose bits are set (a ``text[]`` value for COPY; ``[]`` for none). One list is
    built per distinct mask present and shared by the rows holding it (the lists are never mutated)."""
    bits = np.asarray(bits, dtype=np.int64)
    lists = _code_table(bits, codes)
    return [lists[b] for b in bits.tolist()]


def reasons_literal(bits: np.ndarray) -> np.ndarray:
    return to_pg_array(bits, REASONS)


def warnings_literal(bits: np.ndarray) -> np.ndarray:
    return to_pg_array(bits, WARNINGS)


def from_pg_array(literal: str) -> list[str]:
    """Inverse of one literal (for tests and reports, not for hot paths)."""
    inner = literal.strip()[1:-1]
    return inner.split(",") if inner else []
