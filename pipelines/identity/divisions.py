"""GB/T 2260 administrative division codes (行政区划代码), vectorised look-ups for whole columns.

The data is python-stdnum's own ``stdnum/cn/loc.dat`` (read through ``stdnum.numdb``, the same reader
``stdnum.cn.ric`` uses), so our verdicts and the oracle's cannot drift apart. It lists every county-level code of
China since 1980 with the years it was in use, e.g. ``0115 county="[1992-]浦东新区"`` under ``31`` and
``0103 county="[-2011]卢湾区"``. A code may carry several periods (``[1995-1997]李渡区,[2014-]彭山区``), even with
a gap between them; a period without a start was in use before the data begins, one without an end is current.

Note the data gives 浦东新区 (310115) from **1992** (State Council approval, October 1992), not 1993 when the
district government began work: we follow the data, so ``first_valid_year(310115) == 1992``.

Every function takes a column of codes (numpy array or pandas Series of str or int; anything that is not six
ASCII digits counts as unknown) and answers with a numpy array of the same length, looking codes up in a dense
table indexed by the code's integer value (no per-row Python).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from stdnum import numdb

# ---------------------------------------------------------------------------------------------------------------
# Shanghai (上海市, 31), the districts of today and the retired codes still found on identity numbers.
SHANGHAI_DISTRICTS: dict[str, str] = {
    "310101": "黄浦区", "310104": "徐汇区", "310105": "长宁区", "310106": "静安区", "310107": "普陀区",
    "310109": "虹口区", "310110": "杨浦区", "310112": "闵行区", "310113": "宝山区", "310114": "嘉定区",
    "310115": "浦东新区", "310116": "金山区", "310117": "松江区", "310118": "青浦区", "310120": "奉贤区",
    "310151": "崇明区",
}

# Retired code -> (name, direct successor code or None, last year the code was in use). The year is the end of the
# code's period in stdnum's data (a test keeps them in step); ``current_successor`` follows the chain to today.
SHANGHAI_RETIRED: dict[str, tuple[str, str | None, int]] = {
    "310103": ("卢湾区", "310101", 2011),    # merged into 黄浦区
    "310108": ("闸北区", "310106", 2015),    # merged into 静安区
    "310119": ("南汇区", "310115", 2009),    # merged into 浦东新区
    "310230": ("崇明县", "310151", 2016),    # county became 崇明区
    "310102": ("南市区", "310101", 2000),    # merged into 黄浦区
    "310111": ("吴淞区", "310113", 1988),    # with 宝山县 became 宝山区
    "310200": ("县", None, 2016),            # the "counties" heading, no single successor
    "310221": ("上海县", "310112", 1992),    # with the old 闵行区 became today's 闵行区
    "310222": ("嘉定县", "310114", 1992),
    "310223": ("宝山县", "310113", 1988),
    "310224": ("川沙县", "310115", 1992),
    "310225": ("南汇县", "310119", 2001),
    "310226": ("奉贤县", "310120", 2001),
    "310227": ("松江县", "310117", 1998),
    "310228": ("金山县", "310116", 1997),
    "310229": ("青浦县", "310118", 1999),
    # the 1980 county codes, renumbered 3102[0->2]x in 1982
    **{f"31020{i}": (name, f"31022{i}", 1982) for i, name in
       enumerate(["上海县", "嘉定县", "宝山县", "川沙县", "南汇县", "奉贤县", "松江县", "金山县", "青浦县"], start=1)},
    "310210": ("崇明县", "310230", 1982),
}

# Returned by first_valid_year for a code in use since before the data begins (1980) and for an unknown code.
ALWAYS = 0
UNKNOWN = -1
_OPEN_END = 9999  # end year of a period that has not ended


# ---------------------------------------------------------------------------------------------------------------
# The table, built once from stdnum's data — and kept, as built, in a cache file beside the project's other local
# state: every process that checks identities (each extract task, each publication task) imports this module, and
# reading loc.dat through numdb and building the table took 0.15–0.2 s of each (the cache file: under 0.01 s).
def _loc_dat() -> Path:
    return Path(numdb.__file__).parent / "cn" / "loc.dat"


def cache_path() -> Path | None:
    """The table's cache file, named by what it was built from (stdnum's version, loc.dat's size and mtime): a new
    stdnum or a changed data file is another name, built afresh. None if loc.dat cannot be found."""
    try:
        stat = _loc_dat().stat()
    except OSError:
        return None
    import stdnum

    from pipelines.settings import settings

    return settings.local_dir / "cache" / f"gbt2260-stdnum{stdnum.__version__}-{stat.st_size}-{stat.st_mtime_ns}.pickle"


def _load() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """:func:`_build`'s table, from the cache file when there is a readable one; written there otherwise (atomically:
    two processes starting at once may both build it). A cache that cannot be read or written is only skipped."""
    path = cache_path()
    table = _read_cache(path) if path is not None else None
    if table is None:
        table = _build()
        if path is not None:
            _write_cache(path, table)
    starts, ends, codes, names = table
    index = np.full(1_000_000, -1, dtype=np.int32)  # (row of each code's value; -1: no such code)
    index[codes] = np.arange(len(codes), dtype=np.int32)
    return index, starts, ends, codes, names


def _read_cache(path: Path) -> tuple | None:
    """The cached (starts, ends, codes, names), or None when the file is missing or unreadable (partial, written by
    another numpy): the table is then built again."""
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception:  # noqa: BLE001
        return None


def _write_cache(path: Path, table: tuple) -> None:
    """Write the cache file (renamed into place once written); a directory that cannot be written leaves the table
    uncached (each process builds it, as before the cache)."""
    from pipelines.settings import write_cache_file

    write_cache_file(path, pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL))


def _build() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Return (period starts, period ends, codes, latest names) — :func:`_load` indexes the codes.

    ``index[code]`` is the row of the code or -1; ``starts``/``ends`` are (rows, 3) int16 arrays, periods padded
    with empty ones (start 1, end 0); ``ALWAYS`` as start means "before the data begins".
    """
    rows: list[tuple[int, list[tuple[int, int]], str]] = []
    for plen, province, _hi, _props, counties in numdb.get("cn/loc").prefixes:
        assert plen == 2, "cn/loc.dat: provinces are two digits"
        for clen, county, _chi, props, _children in counties:
            assert clen == 4, "cn/loc.dat: counties are four digits"
            periods: list[tuple[int, int]] = []
            name = ""
            for part in props.get("county", "").split(","):
                if part.startswith("["):
                    span, name = part[1:].split("]")
                    start, end = span.split("-")
                    periods.append((int(start) if start else ALWAYS, int(end) if end else _OPEN_END))
                else:
                    periods.append((ALWAYS, _OPEN_END))
                    name = part
            rows.append((int(province + county), periods, name))
    width = max(len(p) for _, p, _ in rows)
    seen: set[int] = set()
    starts = np.ones((len(rows), width), dtype=np.int16)
    ends = np.zeros((len(rows), width), dtype=np.int16)
    codes = np.empty(len(rows), dtype=np.int32)
    names: list[str] = []
    for i, (code, periods, name) in enumerate(rows):
        assert code not in seen, f"cn/loc.dat: code {code} listed twice"
        seen.add(code)
        codes[i] = code
        names.append(name)
        for k, (start, end) in enumerate(periods):
            starts[i, k], ends[i, k] = start, end
    return starts, ends, codes, names


_INDEX, _STARTS, _ENDS, _CODES, _NAMES_LIST = _load()
_NAMES = np.array(_NAMES_LIST + [None], dtype=object)  # row -1 -> None
_REAL = _STARTS <= _ENDS                                # padding and empty periods ([1983-1982]) are not real
_FIRST = np.where(_REAL, _STARTS, 32767).min(axis=1).astype(np.int32)
_LAST = np.where(_REAL, _ENDS, -1).max(axis=1).astype(np.int32)
_FIRST[_FIRST == 32767] = UNKNOWN                       # a code without any real period (none in today's data)


def _successor_table() -> np.ndarray:
    out = np.array([f"{c:06d}" for c in _CODES], dtype=object)  # current codes map to themselves (built once)
    for code, (_name, succ, _year) in SHANGHAI_RETIRED.items():
        seen = {code}
        while succ is not None and succ in SHANGHAI_RETIRED:
            assert succ not in seen, f"successor cycle at {succ}"
            seen.add(succ)
            succ = SHANGHAI_RETIRED[succ][1]
        out[_INDEX[int(code)]] = succ
    # retired codes outside Shanghai: no successor known here
    out[(_LAST != _OPEN_END) & ~np.isin(_CODES, [int(c) for c in SHANGHAI_RETIRED])] = None
    return np.append(out, None)


_SUCCESSOR = _successor_table()
_CODE_STR = np.array([f"{c:06d}" for c in _CODES] + [None], dtype=object)


# ---------------------------------------------------------------------------------------------------------------
def code_values(codes) -> np.ndarray:
    """Codes as int64 values; -1 where the code is missing or not exactly six ASCII digits."""
    # (a pandas Series by its to_numpy: pandas is not imported here, see pipelines/identity/__init__.py)
    values = codes.to_numpy() if hasattr(codes, "to_numpy") else np.asarray(codes)
    if values.dtype.kind in "iu":
        v = values.astype(np.int64)
        return np.where((v >= 0) & (v <= 999_999), v, -1)
    # text: six ASCII digits, anything else (another length, other digits, a number, None, NaN) unknown
    return np.fromiter((int(c) if isinstance(c, str) and len(c) == 6 and c.isascii() and c.isdigit() else -1
                        for c in values.ravel()), dtype=np.int64, count=values.size).reshape(values.shape)


def rows_of(codes) -> np.ndarray:
    """Row of each code in the table, -1 for an unknown code (internal, shared with ric)."""
    v = code_values(codes)
    return np.where(v >= 0, _INDEX[np.clip(v, 0, None)], -1)


def is_known(codes) -> np.ndarray:
    """True where the code is a GB/T 2260 county-level code of any period, current or retired (all of China)."""
    return rows_of(codes) >= 0


def is_retired(codes) -> np.ndarray:
    """True where the code is known and no longer in use (every period has ended)."""
    r = rows_of(codes)
    return (r >= 0) & (_LAST[r] != _OPEN_END)


def first_valid_year(codes) -> np.ndarray:
    """Year the code came into use: ``ALWAYS`` (0) if before the data begins (1980), ``UNKNOWN`` (-1) if unknown."""
    r = rows_of(codes)
    return np.where(r >= 0, _FIRST[r], UNKNOWN)


def last_valid_year(codes) -> np.ndarray:
    """Last year the code was in use; 9999 for a current code, -1 for an unknown code."""
    r = rows_of(codes)
    return np.where(r >= 0, _LAST[r], -1)


def period_status(codes, years) -> tuple[np.ndarray, np.ndarray]:
    """For each (code, year): (in use that year, came into use only after that year).

    Mirrors ``stdnum.cn.ric.get_birth_place``: a number is in period when one of the code's periods contains the
    birth year. When none does but a period starts later, the district postdates the birth (a genuine number
    issued after the person was born, e.g. a 1985-born resident of 浦东新区 registered after 1992).
    Unknown codes give (False, False).
    """
    r = rows_of(codes)
    y = np.asarray(years, dtype=np.int32)[:, None]
    known = r >= 0
    rr = np.where(known, r, 0)
    starts, ends, real = _STARTS[rr], _ENDS[rr], _REAL[rr]
    in_use = (real & (starts <= y) & (y <= ends)).any(axis=1) & known
    later = (real & (starts > y)).any(axis=1) & known & ~in_use
    return in_use, later


def code_strings(codes) -> np.ndarray:
    """The code as a six-digit str where known, None otherwise (shared str objects, no formatting per row)."""
    return _CODE_STR[rows_of(codes)]


def current_successor(codes) -> np.ndarray:
    """Today's code for each code: itself when current, the successor for a retired Shanghai code (following
    the chain, e.g. 310205 南汇县 -> 310225 -> 310119 -> 310115), None for unknown codes, for 310200 (县) and
    for retired codes outside Shanghai."""
    return _SUCCESSOR[rows_of(codes)]


def district_name(codes) -> np.ndarray:
    """Name of the division in its latest period (e.g. 310115 浦东新区, 310103 卢湾区), None when unknown."""
    return _NAMES[rows_of(codes)]
