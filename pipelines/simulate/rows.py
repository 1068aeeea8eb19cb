"""The rows each department holds: which persons (selections) and their values as text, with planted defects.

A :class:`Batch` is one output chunk of one source: a text column (numpy ``StringDType``) per registry column
name, plus per row the planted defect kind, informational bits and the row's group (a duplicate shares its
original's group). Values are built with vectorised string operations; only the few rows that get a defect are
touched one by one where a vectorised form would be longer than it is worth (about 1% of rows).

Value spellings per source (the departments differ, as real ones do):

| source               | sex        | dates        | update time                  | other coded values                 |
|----------------------|------------|--------------|------------------------------|------------------------------------|
| psb_hukou (前置库)    | 1 / 2      | YYYYMMDD     | timestamptz                  | RKZT 正常/死亡/迁出; BDLX 户籍登记/出生登记/死亡注销/迁出注销/居住地变更 |
| psb_residence_permit | 男 / 女    | YYYY-MM-DD   | YYYY-MM-DDTHH:MM:SS+08:00    | HJDZ_XZQH = home county code       |
| psb_foreign_resident | 男 / 女    | YYYY-MM-DD   | YYYY-MM-DDTHH:MM:SS+08:00    | 证件种类 护照/外国人永久居留身份证; 国籍 ISO alpha-3 |
| health_vital_events  | 1 / 2      | YYYY-MM-DD   | YYYY-MM-DDTHH:MM:SS+08:00    | eventType BIRTH/DEATH; deathDate null for births |
| civil_marriage       | 男 / 女    | YYYY-MM-DD   | YYYY-MM-DDTHH:MM:SS+08:00    | hyzk 已婚/离婚; ywlx 结婚登记/离婚登记 |
| hrss_employment (前置库) | 1 / 2  | YYYYMMDD     | timestamptz                  | CBZT 正常参保/暂停参保/终止参保      |
| education_student    | 男 / 女    | YYYY-MM-DD   | YYYY-MM-DDTHH:MM:SS+08:00    | 学历层次 小学/初中/高中/本科/硕士研究生 |

Keys: RYBH 'RY'+10 digits, JZZBH 'JZ31'+10, 登记编号 'JW'+10, eventId 'CS'/'SW'+10 (birth/death), djbh
'JH'/'LH'+YYYYMMDD+10 (marriage/divorce), GRBH 'GR'+10, 学籍号 'G31'+10 — the digits are the simulator's person id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np

from pipelines.registry import Source
from pipelines.simulate import defects as K
from pipelines.simulate import population as P
from pipelines.simulate.defects import DefectRates
from pipelines.simulate.population import NO_DAY, S, People, Tables

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@dataclass(frozen=True)
class Spec:
    sex: tuple[str, str]            # spelling of male, female
    compact_dates: bool             # YYYYMMDD (else YYYY-MM-DD)
    division: str | None = None     # the division attribute that division defects go to
    address: str | None = None      # its address attribute
    ric: bool = True                # rows carry 公民身份号码
    psb: bool = False               # the authority: protected persons' rows stay clean
    no_id: bool = False             # rows may lose their ID (matched on evidence downstream)
    conflicts: bool = False         # rows may disagree with psb on name / district
    csv: bool = False               # malformed rows possible


SPECS: dict[str, Spec] = {
    "psb_hukou": Spec(("1", "2"), True, "residence_division", "residence_address", psb=True),
    "psb_residence_permit": Spec(("男", "女"), False, "residence_division", "residence_address", psb=True, csv=True),
    "psb_foreign_resident": Spec(("男", "女"), False, "residence_division", "residence_address", ric=False, psb=True),
    "health_vital_events": Spec(("1", "2"), False, "residence_division"),
    "civil_marriage": Spec(("男", "女"), False),
    "hrss_employment": Spec(("1", "2"), True, "residence_division", "residence_address", no_id=True, conflicts=True),
    "education_student": Spec(("男", "女"), False, "residence_division", no_id=True, csv=True),
}

PSB_EVENTS = np.array(["户籍登记", "出生登记", "死亡注销", "迁出注销", "居住地变更"], dtype=S)
EV_REGISTERED, EV_BIRTH, EV_DEATH, EV_MOVED_OUT, EV_MOVE = 0, 1, 2, 3, 4
HEALTH_EVENTS = np.array(["BIRTH", "DEATH"], dtype=S)
CIVIL_EVENTS = np.array(["结婚登记", "离婚登记"], dtype=S)
CIVIL_STATUS = np.array(["已婚", "离婚"], dtype=S)
STATUS_TEXT = np.array(["正常", "死亡", "迁出"], dtype=S)


@dataclass
class Selection:
    """The rows of one source: the person of each row, an event code and the event's day (source-specific)."""

    pids: np.ndarray
    event: np.ndarray
    event_day: np.ndarray

    @classmethod
    def of(cls, pids, event=0, event_day=NO_DAY) -> "Selection":
        pids = np.asarray(pids, dtype=np.int64)
        return cls(pids, np.broadcast_to(np.asarray(event, dtype=np.int8), pids.shape).copy(),
                   np.broadcast_to(np.asarray(event_day, dtype=np.int64), pids.shape).copy())

    @classmethod
    def concat(cls, parts: list["Selection"]) -> "Selection":
        if not parts:
            return cls.of(np.empty(0, dtype=np.int64))
        return cls(*(np.concatenate([getattr(s, a) for s in parts]) for a in ("pids", "event", "event_day")))

    def __len__(self) -> int:
        return len(self.pids)


@dataclass
class Batch:
    columns: list[str]                 # registry column names in output order
    cols: dict[str, np.ndarray]        # column -> StringDType values ('' = missing)
    kind: np.ndarray                   # planted defect kind per row (0 none)
    info: np.ndarray                   # informational bits per row
    group: np.ndarray                  # original row number (a duplicate has its original's)

    def __len__(self) -> int:
        return len(self.kind)

    def take(self, idx: np.ndarray) -> "Batch":
        return Batch(self.columns, {c: v[idx] for c, v in self.cols.items()}, self.kind[idx], self.info[idx],
                     self.group[idx])

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(defect counters, info counters) of the rows, zero counts left out."""
        defects: dict[str, int] = {}
        info: dict[str, int] = {}
        for code, n in enumerate(np.bincount(self.kind, minlength=len(K.COUNTER) + 1)):
            if code and n:
                defects[K.COUNTER[code]] = defects.get(K.COUNTER[code], 0) + int(n)
                if code in K.NORMALISED_DETAIL:
                    info[K.NORMALISED_DETAIL[code]] = int(n)
        for bit, name in K.INFO_NAMES.items():
            n = int(((self.info & bit) != 0).sum())
            if n:
                info[name] = n
        return defects, info


def output_columns(source: Source) -> list[str]:
    """Key column, then the registry's fields in order (the key once), then the update-time column."""
    cols = [source.key]
    for name in source.fields.values():
        if name not in cols:
            cols.append(name)
    if source.updated_at not in cols:
        cols.append(source.updated_at)
    return cols


# --------------------------------------------------------------------------------------------------------------
# Text helpers (vectorised)


def add(*parts) -> np.ndarray:
    out = parts[0]
    for p in parts[1:]:
        out = np.strings.add(out, p)
    return np.asarray(out, dtype=S)


def digits(a: np.ndarray, width: int = 0) -> np.ndarray:
    s = np.asarray(a, dtype=np.int64).astype(S)
    return np.strings.zfill(s, width) if width else s


@lru_cache(maxsize=4)
def _date_table(compact: bool) -> tuple[int, np.ndarray]:
    lo = P.day_number(date(1890, 1, 1))
    hi = P.day_number(date(2101, 1, 1))
    text = np.datetime_as_string(np.arange(lo, hi).astype("datetime64[D]"), unit="D").astype(S)
    if compact:
        text = np.strings.replace(text, "-", "")
    return lo, text


def dates(days: np.ndarray, compact: bool) -> np.ndarray:
    """Day numbers as 'YYYY-MM-DD' / 'YYYYMMDD' ('' for NO_DAY)."""
    lo, table = _date_table(compact)
    days = np.asarray(days, dtype=np.int64)
    none = days == NO_DAY
    out = table[np.where(none, lo, days) - lo]
    return np.where(none, "", out).astype(S) if none.any() else out


@lru_cache(maxsize=1)
def _hms() -> np.ndarray:
    s = np.arange(86400)
    return add(digits(s // 3600, 2), ":", digits(s // 60 % 60, 2), ":", digits(s % 60, 2))


def timestamps(day: int, secs: np.ndarray) -> np.ndarray:
    """ISO 8601 local times on ``day`` at +08:00 ('2026-01-02T09:15:00+08:00')."""
    return add(dates(np.full(len(secs), day), False), "T", _hms()[secs], "+08:00")


def names(p: People, pids: np.ndarray, variant: np.ndarray | None = None) -> np.ndarray:
    """Names as the departments write them: 张伟 (Chinese), 'JAMES SMITH' (foreigners, passport spelling).
    ``variant`` rows get the look-alike of their first given-name character (the hrss conflict)."""
    sur, g1, g2 = p.sur[pids], p.g1[pids], p.g2[pids]
    foreign = p.cat[pids] >= P.PASSPORT
    g1c = np.where(foreign, 0, g1)
    first = P.GIVEN[g1c] if variant is None else np.where(variant, P.GIVEN_VARIANT[g1c], P.GIVEN[g1c])
    second = np.where(g2 >= 0, P.GIVEN[np.maximum(g2, 0)], "")
    out = add(P.SURNAME[np.where(foreign, 0, sur)], first, second)
    if foreign.any():
        out[foreign] = add(P.FOREIGN_GIVEN[g1[foreign]], " ", P.FOREIGN_FAMILY[sur[foreign]])
    return out


def addresses(div: np.ndarray, road: np.ndarray, no: np.ndarray, room: np.ndarray) -> np.ndarray:
    return add("上海市", P.DIV_NAME[div], P.ROAD_NAME[road], digits(no), "号", digits(room), "室")


def ric_numbers(body: np.ndarray, check: np.ndarray) -> np.ndarray:
    return add(np.strings.zfill(np.asarray(body, dtype=np.int64).astype(S), 17), P.CHECK_CHARS[check])


def foreign_documents(p: People, pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(证件种类, 证件号码): passports (nationality prefix + digits from the person id, unique per nationality) and
    外国人永久居留身份证 (2023: 18 characters, MOD 11-2; 2017: alpha-3 + '31' + YYMMDD + 3 digits + 1)."""
    nat = np.maximum(p.nat[pids], 0)
    width = P.NAT_DIGITS[nat]
    scrambled = (pids * 7919 + 1_234_567) % (10 ** width)
    passport = add(P.NAT_PREFIX[nat], _zfill_var(scrambled, width))
    body = p.body[pids]
    new = ric_numbers(body, p.check[pids])
    yymmdd = (body // 1000) % 1_000_000
    seq = body % 1000
    old = add(P.NAT_ALPHA[nat], "31", digits(yymmdd, 6), digits(seq, 3), digits((yymmdd + seq) % 10))
    prp = p.cat[pids] == P.PRP
    number = np.where(prp, np.where(p.prp_new[pids], new, old), passport).astype(S)
    kind = np.where(prp, "外国人永久居留身份证", "护照").astype(S)
    return kind, number


def _zfill_var(values: np.ndarray, width: np.ndarray) -> np.ndarray:
    out = np.asarray(values, dtype=np.int64).astype(S)
    for w in np.unique(width):
        m = width == w
        out[m] = np.strings.zfill(out[m], int(w))
    return out


# --------------------------------------------------------------------------------------------------------------
# Rows per source (canonical attribute names; '_key' is the source key)


def _common(p: People, pids: np.ndarray, spec: Spec) -> dict[str, np.ndarray]:
    return {
        "id_number": ric_numbers(p.body[pids], p.check[pids]),
        "name": names(p, pids),
        "sex": np.where(p.sex[pids] == 1, spec.sex[0], spec.sex[1]).astype(S),
        "birth_date": dates(p.birth[pids], spec.compact_dates),
    }


def build_values(source_id: str, p: People, t: Tables, sel: Selection) -> dict[str, np.ndarray]:
    spec = SPECS[source_id]
    pids = sel.pids
    if source_id == "psb_hukou":
        v = _common(p, pids, spec)
        v |= {
            "_key": add("RY", digits(pids, 10)),
            "ethnicity": P.ETHNIC[p.ethnic[pids]],
            "hukou_division": digits(p.hk_code[pids]),
            "hukou_address": addresses(P.div_index(p.hk_code[pids]), p.hk_road[pids], p.hk_no[pids], p.hk_room[pids]),
            "residence_division": digits(P.DIV_CODE[p.res_div[pids]]),
            "residence_address": addresses(p.res_div[pids], p.res_road[pids], p.res_no[pids], p.res_room[pids]),
            "population_status": STATUS_TEXT[p.status[pids]],
            "event_type": PSB_EVENTS[sel.event],
            "event_date": dates(sel.event_day, True),
        }
    elif source_id == "psb_residence_permit":
        v = _common(p, pids, spec)
        v |= {
            "_key": add("JZ31", digits(pids, 10)),
            "hukou_division": digits(p.hk_code[pids]),
            "residence_division": digits(P.DIV_CODE[p.res_div[pids]]),
            "residence_address": addresses(p.res_div[pids], p.res_road[pids], p.res_no[pids], p.res_room[pids]),
        }
    elif source_id == "psb_foreign_resident":
        kind, number = foreign_documents(p, pids)
        v = {
            "_key": add("JW", digits(pids, 10)),
            "id_type": kind, "id_number": number, "name": names(p, pids),
            "sex": np.where(p.sex[pids] == 1, spec.sex[0], spec.sex[1]).astype(S),
            "birth_date": dates(p.birth[pids], False),
            "nationality": P.NAT_ALPHA[np.maximum(p.nat[pids], 0)],
            "residence_division": digits(P.DIV_CODE[p.res_div[pids]]),
            "residence_address": addresses(p.res_div[pids], p.res_road[pids], p.res_no[pids], p.res_room[pids]),
        }
    elif source_id == "health_vital_events":
        v = _common(p, pids, spec)
        death = sel.event == 1
        v |= {
            "_key": add(np.where(death, "SW", "CS").astype(S), digits(pids, 10)),
            "death_date": dates(np.where(death, sel.event_day, NO_DAY), False),
            "residence_division": digits(P.DIV_CODE[p.res_div[pids]]),
            "event_type": HEALTH_EVENTS[sel.event],
            "event_date": dates(sel.event_day, False),
        }
    elif source_id == "civil_marriage":
        v = _common(p, pids, spec)
        v |= {
            "_key": add(np.where(sel.event == 1, "LH", "JH").astype(S), dates(sel.event_day, True), digits(pids, 10)),
            "marital_status": CIVIL_STATUS[sel.event],
            "event_type": CIVIL_EVENTS[sel.event],
            "event_date": dates(sel.event_day, False),
        }
    elif source_id == "hrss_employment":
        v = _common(p, pids, spec)
        emp = np.maximum(p.employer[pids], 0)
        v |= {
            "_key": add("GR", digits(pids, 10)),
            "residence_division": digits(P.DIV_CODE[p.hrss_div[pids]]),
            "residence_address": addresses(p.hrss_div[pids], p.hrss_road[pids], p.hrss_no[pids], p.hrss_room[pids]),
            "employer": t.employer_name[emp],
            "employer_uscc": t.employer_uscc[emp],
            "social_insurance_status": P.INSURANCE[p.insurance[pids]],
        }
    elif source_id == "education_student":
        v = _common(p, pids, spec)
        v |= {
            "_key": add("G31", digits(pids, 10)),
            "residence_division": digits(P.DIV_CODE[p.res_div[pids]]),
            "school": t.school_name[np.maximum(p.school[pids], 0)],
            "education_level": P.LEVEL_NAME[np.maximum(p.level[pids], 0)],
        }
    else:  # pragma: no cover - the registry and SPECS are kept in step by a test
        raise KeyError(source_id)
    return v


# --------------------------------------------------------------------------------------------------------------
# Defects


@dataclass
class Context:
    """What eligibility for the cross-department defects needs about the whole population on the day."""

    evidence_count: np.ndarray   # per person: how many persons share their name + birth date + sex


def evidence_context(p: People) -> Context:
    key = p.evidence_key()
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return Context(counts[inverse])


def _row_division_index(source_id: str, p: People, pids: np.ndarray) -> np.ndarray:
    return (p.hrss_div if source_id == "hrss_employment" else p.res_div)[pids]


def eligibility(source_id: str, p: People, sel: Selection, ctx: Context | None) -> dict[int, np.ndarray]:
    spec = SPECS[source_id]
    pids = sel.pids
    n = len(pids)
    yes = np.ones(n, dtype=bool)
    e: dict[int, np.ndarray] = {K.NAME_MISSING: yes, K.KEY_MISSING: yes, K.DUP_EXACT: yes, K.DUP_NEAR: yes}
    birth_year = P.ymd_of(p.birth[pids]) // 10000
    if spec.ric:
        e |= {
            K.ID_15: (birth_year >= 1900) & (birth_year <= 1999),
            K.ID_LOWER_X: p.check[pids] == 10,
            K.ID_FULLWIDTH: yes, K.ID_SPACES: yes, K.ID_BAD_CHECK: yes, K.ID_BAD_BIRTH: yes,
            K.ID_UNKNOWN_DIV: yes, K.ID_POSTDATES: birth_year < 2016,
            K.SEX_MISMATCH: yes, K.BIRTH_MISMATCH: yes, K.BAD_DATE: yes,
        }
    else:
        e |= {K.FOREIGN_BAD: yes, K.ID_TYPE_UNKNOWN: yes, K.BAD_DATE: yes}
    if spec.division:
        code = P.DIV_CODE[_row_division_index(source_id, p, pids)]
        e[K.DIV_RETIRED] = np.isin(code, list(P.vocab.RETIRED_FOR_CURRENT))
        e[K.BAD_DIVISION] = yes
    if spec.csv:
        e[K.MALFORMED] = yes
    if spec.no_id or spec.conflicts:
        prot = p.protected[pids] & (p.cat[pids] <= P.MIGRANT)
        current = _row_division_index(source_id, p, pids) == p.res_div[pids]
        if spec.no_id and ctx is not None:
            count = ctx.evidence_count[pids]
            twin = p.twin_of[pids]
            pair_same_district = (twin >= 0) & (p.res_div[np.maximum(twin, 0)] == p.res_div[pids])
            e[K.NO_ID_UNIQUE] = prot & current & (count == 1)
            e[K.NO_ID_AMBIGUOUS] = prot & current & (count == 2) & pair_same_district
        if spec.conflicts:
            e[K.CONFLICT_NAME] = prot.copy()
            e[K.CONFLICT_RES] = prot & current
    if spec.psb:
        unprotected = ~p.protected[pids]
        e = {k: v & unprotected for k, v in e.items()}
    return e


def assign_kinds(rng: np.random.Generator, rates: DefectRates, elig: dict[int, np.ndarray], n: int) -> np.ndarray:
    kind = np.zeros(n, dtype=np.int8)
    for code, _, attr in K.KINDS:
        rate = getattr(rates, attr)
        if code not in elig or rate <= 0:
            continue
        u = rng.random(n)
        kind[(kind == 0) & elig[code] & (u < rate)] = code
    return kind


_BAD_MMDD = np.array([230, 231, 431, 631, 931, 1131, 1301, 15, 500], dtype=np.int64)


def apply_defects(source_id: str, p: People, sel: Selection, v: dict[str, np.ndarray], kind: np.ndarray,
                  rng: np.random.Generator) -> None:
    """Change the values of the rows with a defect kind in place (duplicates are added later)."""
    spec = SPECS[source_id]
    pids = sel.pids

    def rows(code: int) -> np.ndarray:
        return np.flatnonzero(kind == code)

    idn = v["id_number"]
    if spec.ric:
        body, check = p.body[pids], p.check[pids]
        r = rows(K.ID_15)
        if len(r):
            b = body[r]
            idn[r] = digits((b // 10**11) * 10**9 + ((b // 1000) % 10**6) * 1000 + b % 1000, 15)
        r = rows(K.ID_LOWER_X)
        idn[r] = np.strings.replace(idn[r], "X", "x")
        r = rows(K.ID_FULLWIDTH)
        idn[r] = np.strings.translate(idn[r], FULLWIDTH)
        r = rows(K.ID_SPACES)
        if len(r):
            style = rng.integers(0, 3, len(r))
            s = idn[r]
            grouped = add(np.strings.slice(s, 0, 6), " ", np.strings.slice(s, 6, 14), " ", np.strings.slice(s, 14, 18))
            idn[r] = np.where(style == 0, add(" ", s), np.where(style == 1, add(s, "  "), grouped)).astype(S)
        r = rows(K.ID_BAD_CHECK)
        idn[r] = ric_numbers(body[r], (check[r] + rng.integers(1, 11, len(r))) % 11)
        r = rows(K.ID_BAD_BIRTH)
        if len(r):
            b = body[r]
            year = (b // 10**7) % 10**4
            nb = (b // 10**11) * 10**11 + (year * 10000 + _BAD_MMDD[rng.integers(0, len(_BAD_MMDD), len(r))]) * 1000 + b % 1000
            idn[r] = ric_numbers(nb, P.check_values(nb))
        for code, div in ((K.ID_UNKNOWN_DIV, P.vocab.UNKNOWN_DIVISION), (K.ID_POSTDATES, P.vocab.POSTDATING_DIVISION)):
            r = rows(code)
            if len(r):
                nb = div * 10**11 + body[r] % 10**11
                idn[r] = ric_numbers(nb, P.check_values(nb))
        r = rows(K.SEX_MISMATCH)
        v["sex"][r] = np.where(p.sex[pids[r]] == 1, spec.sex[1], spec.sex[0])
        r = rows(K.BIRTH_MISMATCH)
        if len(r):
            off = rng.integers(1, 401, len(r)) * np.where(rng.random(len(r)) < 0.5, -1, 1)
            v["birth_date"][r] = dates(np.minimum(p.birth[pids[r]] + off, P.day_number(date(2099, 1, 1))),
                                       spec.compact_dates)
    else:
        r = rows(K.FOREIGN_BAD)
        idn[r] = add(np.strings.slice(idn[r], 0, 3), "#", np.strings.slice(idn[r], 3, None))
        v["id_type"][rows(K.ID_TYPE_UNKNOWN)] = "其他证件"
    r = rows(K.BAD_DATE)
    if len(r):
        year = P.ymd_of(p.birth[pids[r]]) // 10000
        mmdd = _BAD_MMDD[rng.integers(0, 6, len(r))]  # day 30/31 in a short month: looks like a date, is not one
        ymd = digits(year * 10000 + mmdd, 8)
        v["birth_date"][r] = ymd if spec.compact_dates else add(np.strings.slice(ymd, 0, 4), "-", np.strings.slice(ymd, 4, 6), "-", np.strings.slice(ymd, 6, 8))
    v["name"][rows(K.NAME_MISSING)] = ""
    v["_key"][rows(K.KEY_MISSING)] = ""
    if spec.division:
        div = v[spec.division]
        r = rows(K.DIV_RETIRED)
        if len(r):
            current = div[r].astype(np.int64)
            lut = P.vocab.RETIRED_FOR_CURRENT
            div[r] = digits(np.array([lut[int(c)] for c in current], dtype=np.int64))
        div[rows(K.BAD_DIVISION)] = str(P.vocab.UNKNOWN_DIVISION)
        r = rows(K.CONFLICT_RES)
        if len(r):
            cur = _row_division_index(source_id, p, pids[r]).astype(np.int64)
            other = ((cur + 1 + rng.integers(0, P.N_DIV - 1, len(r))) % P.N_DIV).astype(np.int8)
            div[r] = digits(P.DIV_CODE[other])
            if spec.address:
                road, no, room = P._address(rng, other)
                v[spec.address][r] = addresses(other, road, no, room)
    for code in (K.NO_ID_UNIQUE, K.NO_ID_AMBIGUOUS):
        idn[rows(code)] = ""
    r = rows(K.CONFLICT_NAME)
    if len(r):
        v["name"][r] = names(p, pids[r], variant=np.ones(len(r), dtype=bool))


def near_copy(source_id: str, v: dict[str, np.ndarray], r: np.ndarray) -> dict[str, np.ndarray]:
    """New values of rows ``r`` (copies of the row before them): a space inside the name (or the name followed by
    an ideographic space) and, where there is an address, its digits in full width."""
    spec = SPECS[source_id]
    out = {"name": v["name"][r]}
    if spec.address:
        out[spec.address] = v[spec.address][r]
    name = out["name"]
    latin = np.strings.find(name, " ") >= 0
    spaced = np.where(latin, np.strings.replace(name, " ", "  "),
                      add(np.strings.slice(name, 0, 1), " ", np.strings.slice(name, 1, None)))
    out["name"] = np.where(np.arange(len(r)) % 2 == 0, spaced, add(name, "\u3000")).astype(S)
    if spec.address:
        out[spec.address] = np.strings.translate(out[spec.address], FULLWIDTH)
    return out


def build_batch(source: Source, p: People, t: Tables, sel: Selection, updated_day: int, secs: np.ndarray,
                rates: DefectRates, rng: np.random.Generator, ctx: Context | None, increment: bool) -> Batch:
    """The rows of ``sel`` for ``source`` updated on ``updated_day`` at ``secs``, with planted defects.

    A row chosen to be duplicated stays clean and is followed by its copy, which carries the duplicate kind (the
    copies are planned before the text is built, so no string array is re-ordered)."""
    sid = source.id
    spec = SPECS[sid]
    kind0 = assign_kinds(rng, rates, eligibility(sid, p, sel, ctx), len(sel))
    dup = np.isin(kind0, (K.DUP_EXACT, K.DUP_NEAR))
    group = np.repeat(np.arange(len(sel), dtype=np.int64), 1 + dup)
    copy = np.zeros(len(group), dtype=bool)
    copy[1:] = group[1:] == group[:-1]
    kind = np.where(copy, kind0[group], np.where(dup[group], 0, kind0[group])).astype(np.int8)
    sel = Selection(sel.pids[group], sel.event[group], sel.event_day[group])
    secs = secs[group]

    v = build_values(sid, p, t, sel)
    apply_defects(sid, p, sel, v, kind, rng)
    r = np.flatnonzero(kind == K.DUP_NEAR)
    if len(r):
        for c, a in near_copy(sid, v, r).items():
            v[c][r] = a
    v["_updated"] = timestamps(updated_day, secs)

    info = np.zeros(len(sel), dtype=np.int16)
    if spec.ric:
        retired = np.isin(p.id_division[sel.pids], P.RETIRED_ID_CODES) & ~np.isin(kind, K.ID_REJECTING + (K.ID_POSTDATES,))
        info[retired] |= K.INFO_RETIRED_ID
    if increment:
        info[(sel.event_day != NO_DAY) & (sel.event_day < updated_day)] |= K.INFO_LATE
    if sid == "hrss_employment":
        info[(p.hrss_div[sel.pids] != p.res_div[sel.pids]) & (kind != K.CONFLICT_RES)] |= K.INFO_STALE_RES

    columns = output_columns(source)
    names_of = {source.key: "_key", source.updated_at: "_updated"}
    for attr, col in source.fields.items():
        names_of.setdefault(col, attr)
    cols = {c: v[names_of[c]] for c in columns}
    return Batch(columns, cols, kind, info, group)
