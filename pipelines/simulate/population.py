"""The simulated residents: a columnar population (numpy arrays indexed by person id) and its daily changes.

Everything is drawn from numpy generators seeded by (seed, persons, day, purpose), so the base population depends
only on (seed, persons) and the changes of day d only on (seed, persons, d) and the state before d. No loop runs
per person: attributes are sampled for whole arrays, strings are built later, per output chunk (rows.py).

Categories: 0 Shanghai 户籍 (hukou) residents, 1 migrants holding a 居住证, 2 foreigners with a passport, 3 foreigners
with a 外国人永久居留身份证. Day numbers are days since 1970-01-01 (negative before).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from datetime import date

import numpy as np
from numpy.dtypes import StringDType

from pipelines.simulate import vocab

S = StringDType()
HUKOU, MIGRANT, PASSPORT, PRP = 0, 1, 2, 3
ACTIVE, DECEASED, MOVED_OUT = 0, 1, 2
NO_DAY = np.int32(np.iinfo(np.int32).min)
EPOCH = date(1970, 1, 1)
CHECK_CHARS = np.array(list("0123456789X"), dtype=S)
_W17 = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2


def day_number(d: date) -> int:
    return (d - EPOCH).days


def rng_for(seed: int, persons: int, day: int, purpose: str) -> np.random.Generator:
    """The generator of one purpose on one day (day -1: the base population)."""
    return np.random.default_rng(np.random.SeedSequence([seed, persons, day + 1, zlib.crc32(purpose.encode())]))


def check_values(body: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 11-2 check value (10 = 'X') of 17-digit bodies given as int64."""
    b = body.astype(np.int64).copy()
    s = np.zeros(len(b), dtype=np.int64)
    for k in range(16, -1, -1):
        s += (b % 10) * _W17[k]
        b //= 10
    return ((12 - s % 11) % 11).astype(np.int8)


def ymd_of(days: np.ndarray) -> np.ndarray:
    """YYYYMMDD integers of day numbers."""
    d = np.asarray(days).astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dd = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return y * 10000 + m * 100 + dd


def age_years(birth: np.ndarray, today: int) -> np.ndarray:
    """Completed years of age on day ``today`` (calendar-exact)."""
    b = ymd_of(birth)
    t = int(ymd_of(np.array([today]))[0])
    return ((t - b) // 10000).astype(np.int32)


def _cum(p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p / p.sum(axis=-1, keepdims=True), axis=-1)
    c[..., -1] = 1.0
    return c


def draw(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray | None = None, n: int | None = None) -> np.ndarray:
    """Categorical draws: ``cum`` a cumulative distribution (1-d) or one per row of a table indexed by ``rows``."""
    if rows is None:
        return np.searchsorted(cum, rng.random(n), side="right").clip(0, len(cum) - 1)
    u = rng.random(len(rows))
    table = cum[rows]
    return (u[:, None] >= table).sum(axis=1).clip(0, cum.shape[1] - 1)


# --------------------------------------------------------------------------------------------------------------
# Fixed tables (districts, roads, names, employers, schools), built once per (seed, persons).

DIV_CODE = np.array([c for c, _, _, _ in vocab.DISTRICTS], dtype=np.int32)
DIV_NAME = np.array([n for _, n, _, _ in vocab.DISTRICTS], dtype=S)
DIV_CUM = _cum(np.array([w for _, _, w, _ in vocab.DISTRICTS]))
ROAD_NAME = np.array([r for _, _, _, roads in vocab.DISTRICTS for r in roads], dtype=S)
ROAD_COUNT = np.array([len(roads) for _, _, _, roads in vocab.DISTRICTS], dtype=np.int32)
ROAD_START = np.concatenate([[0], np.cumsum(ROAD_COUNT)[:-1]]).astype(np.int32)
N_DIV = len(DIV_CODE)


def div_index(codes: np.ndarray) -> np.ndarray:
    """Index into DIV_CODE of today's Shanghai district codes."""
    return np.searchsorted(DIV_CODE, codes).astype(np.int8)

SURNAME = np.array([s for s, _ in vocab.SURNAMES], dtype=S)
SURNAME_CUM = _cum(np.array([w for _, w in vocab.SURNAMES]))
GIVEN = np.array(list(vocab.GIVEN_MALE + vocab.GIVEN_FEMALE), dtype=S)
GIVEN_VARIANT = np.array(list(vocab.GIVEN_MALE_VARIANT + vocab.GIVEN_FEMALE_VARIANT), dtype=S)
N_MALE_GIVEN = len(vocab.GIVEN_MALE)
N_FEMALE_GIVEN = len(vocab.GIVEN_FEMALE)
ETHNIC = np.array([e for e, _ in vocab.ETHNICITIES], dtype=S)
ETHNIC_CUM = _cum(np.array([w for _, w in vocab.ETHNICITIES]))
NAT_ALPHA = np.array([n[0] for n in vocab.NATIONALITIES], dtype=S)
NAT_NUM = np.array([n[1] for n in vocab.NATIONALITIES], dtype=np.int64)
NAT_CUM = _cum(np.array([n[2] for n in vocab.NATIONALITIES]))
NAT_PREFIX = np.array([n[3] for n in vocab.NATIONALITIES], dtype=S)
NAT_DIGITS = np.array([max(n[4], 7) for n in vocab.NATIONALITIES], dtype=np.int64)
FOREIGN_FAMILY = np.array([f for n in vocab.NATIONALITIES for f in n[5]], dtype=S)
FOREIGN_GIVEN = np.array([g for n in vocab.NATIONALITIES for g in n[6]], dtype=S)
N_FOREIGN_NAMES = 8
INSURANCE = np.array([s for s, _ in vocab.INSURANCE_STATUS], dtype=S)
INSURANCE_CUM = _cum(np.array([w for _, w in vocab.INSURANCE_STATUS]))
LEVEL_NAME = np.array([lv[0] for lv in vocab.LEVELS], dtype=S)
N_K12 = 3  # 小学 初中 高中 are district schools; 本科/硕士研究生 at universities

_YEARS = np.arange(1890, 2101)


def _id_code_table(codes: list[tuple[int, int | None, int | None, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(codes, cumulative weights per birth year since 1890) of the division codes valid in each year."""
    code = np.array([c[0] for c in codes], dtype=np.int32)
    w = np.zeros((len(_YEARS), len(codes)))
    for j, (_, first, last, weight) in enumerate(codes):
        ok = np.ones(len(_YEARS), dtype=bool)
        if first is not None:
            ok &= _YEARS >= first
        if last is not None:
            ok &= _YEARS <= last
        w[:, j] = np.where(ok, weight, 0.0)
    # a year where no code is valid cannot occur for the lists in vocab (urban districts are always valid)
    return code, _cum(w)


SH_CODES, SH_CODE_CUM = _id_code_table(vocab.SH_ID_CODES)
OTHER_CODES, OTHER_CODE_CUM = _id_code_table([(c, f, None, w) for c, f, w in vocab.OTHER_ID_CODES])
RETIRED_ID_CODES = np.array(vocab.RETIRED_ID_CODES, dtype=np.int32)

# marital status (1 未婚 2 已婚 3 丧偶 4 离婚) by age band
_MARITAL_EDGES = np.array([0, 20, 25, 30, 40, 60, 80])
_MARITAL_CUM = _cum(np.array([
    [1.00, 0.00, 0.000, 0.000], [0.80, 0.19, 0.000, 0.010], [0.45, 0.52, 0.000, 0.030], [0.12, 0.80, 0.005, 0.075],
    [0.04, 0.85, 0.030, 0.080], [0.03, 0.75, 0.160, 0.060], [0.02, 0.45, 0.500, 0.030],
]))
MARITAL_TEXT = np.array(["", "未婚", "已婚", "丧偶", "离婚"], dtype=S)

# age pyramids (share by single year of age 0..100)
_AGES = np.arange(101)
AGE_CUM = {
    HUKOU: _cum(np.interp(_AGES, [0, 5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 100],
                          [0.7, 0.8, 0.85, 0.8, 1.0, 1.1, 1.3, 1.35, 0.8, 0.3, 0.05, 0.01])),
    MIGRANT: _cum(np.interp(_AGES, [0, 14, 17, 18, 25, 35, 45, 55, 65, 80, 90, 100],
                            [0.5, 0.5, 0.3, 1.2, 2.0, 1.8, 1.2, 0.5, 0.15, 0.05, 0.0, 0.0])),
    PASSPORT: _cum(np.interp(_AGES, [0, 17, 18, 25, 55, 70, 85, 100], [0.3, 0.3, 0.6, 1.5, 1.5, 0.3, 0.05, 0.0])),
}
AGE_CUM[PRP] = AGE_CUM[PASSPORT]


@dataclass(frozen=True)
class Tables:
    """Employers (name, 统一社会信用代码) and schools, fixed for a (seed, persons) world."""

    employer_name: np.ndarray
    employer_uscc: np.ndarray
    employer_cum: np.ndarray
    school_name: np.ndarray

    @classmethod
    def build(cls, seed: int, persons: int) -> "Tables":
        rng = rng_for(seed, persons, -1, "tables")
        e = int(np.clip(persons // 100, 20, 20000))
        t = np.array(vocab.EMPLOYER_TRADE, dtype=S)
        ind = np.array(vocab.EMPLOYER_INDUSTRY, dtype=S)
        form = np.array(vocab.EMPLOYER_FORM, dtype=S)
        t1 = rng.integers(0, len(t), e)
        t2 = (t1 + rng.integers(1, len(t), e)) % len(t)  # two different trade words
        name = np.strings.add(np.strings.add("上海", t[t1]), t[t2])
        name = np.strings.add(np.strings.add(name, ind[rng.integers(0, len(ind), e)]), form[rng.integers(0, len(form), e)])
        div = DIV_CODE[draw(rng, DIV_CUM, n=e)]
        uscc = uscc_codes(rng, div)
        weights = 1.0 / (np.arange(e) + 5.0)  # a few big employers, a long tail of small ones
        schools = []
        for level in range(N_K12):
            suffix = ("小学", "初级中学", "高级中学")[level]
            for d in range(N_DIV):
                for k in vocab.SCHOOL_NAMES:
                    schools.append(f"上海市{vocab.DISTRICTS[d][1]}{k}{suffix}")
        schools.extend(vocab.UNIVERSITIES)
        return cls(name, uscc, _cum(weights), np.array(schools, dtype=S))


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_W = np.array([3, 7, 9, 10, 5, 8, 4, 2])
_USCC_W = np.array([pow(3, i, 31) for i in range(17)])


_USCC_VALUE = np.array([int(c) if c.isdigit() else ord(c) - 55 for c in _USCC_ALPHABET])  # GB 11714 values


def uscc_codes(rng: np.random.Generator, division: np.ndarray) -> np.ndarray:
    """Valid 统一社会信用代码 (GB 32100): '91' (enterprise, 工商), the division, a GB 11714 organisation code with its
    check character, and the MOD 31 check character — what stdnum.cn.uscc accepts (the oracle in tests)."""
    n = len(division)
    idx = np.zeros((n, 18), dtype=np.int64)  # indexes into the USCC alphabet (= the character values for GB 32100)
    idx[:, 0], idx[:, 1] = 9, 1
    for k in range(6):
        idx[:, 2 + k] = (division // 10 ** (5 - k)) % 10
    # organisation code body: mostly digits, sometimes a letter
    body = np.where(rng.random((n, 8)) < 0.05, rng.integers(10, 31, (n, 8)), rng.integers(0, 10, (n, 8)))
    c = 11 - (_USCC_VALUE[body] @ _ORG_W) % 11
    idx[:, 8:16] = body
    idx[:, 16] = np.where(c == 10, _USCC_ALPHABET.index("X"), np.where(c == 11, 0, c))
    idx[:, 17] = (31 - (idx[:, :17] @ _USCC_W) % 31) % 31
    chars = np.array(list(_USCC_ALPHABET), dtype=S)[idx]
    out = chars[:, 0]
    for k in range(1, 18):
        out = np.strings.add(out, chars[:, k])
    return out


# --------------------------------------------------------------------------------------------------------------
# The population.


@dataclass
class People:
    """One array per attribute, index = person id (pid)."""

    cat: np.ndarray
    sex: np.ndarray            # 1 男 2 女
    birth: np.ndarray          # day number
    status: np.ndarray         # ACTIVE / DECEASED / MOVED_OUT
    status_day: np.ndarray     # day of death or of moving out (NO_DAY)
    body: np.ndarray           # 17-digit body of the RIC / 2023 PRP number; old-format PRP: private unique code
    check: np.ndarray          # check value 0..10 (10 = X)
    prp_new: np.ndarray        # PRP: the 2023 18-character card (else the 2017 15-character one)
    nat: np.ndarray            # index into vocab.NATIONALITIES, -1 for Chinese citizens
    sur: np.ndarray            # surname (foreigners: family name) index
    g1: np.ndarray             # given-name character (foreigners: given name) index
    g2: np.ndarray             # second given-name character, -1 none
    ethnic: np.ndarray
    hk_code: np.ndarray        # 户籍地 division code (migrants: their home county = the ID's code)
    hk_road: np.ndarray
    hk_no: np.ndarray
    hk_room: np.ndarray
    res_div: np.ndarray        # index into DIV_CODE
    res_road: np.ndarray
    res_no: np.ndarray
    res_room: np.ndarray
    hrss_div: np.ndarray       # the address hrss holds (set when the person appears, never told of moves)
    hrss_road: np.ndarray
    hrss_no: np.ndarray
    hrss_room: np.ndarray
    marital: np.ndarray        # 1 未婚 2 已婚 3 丧偶 4 离婚
    marital_day: np.ndarray    # day of the last marriage/divorce registration (NO_DAY)
    employer: np.ndarray       # index into Tables.employer_*, -1 none
    insurance: np.ndarray
    school: np.ndarray         # index into Tables.school_name, -1 none
    level: np.ndarray          # index into LEVEL_NAME, -1 none
    protected: np.ndarray      # psb rows never carry defects (cross-department defects are planted on these)
    twin_of: np.ndarray        # the other person of a planted same-name/birth/sex/district pair, -1 none

    def __len__(self) -> int:
        return len(self.cat)

    def extend(self, other: "People") -> None:
        for f in fields(self):
            setattr(self, f.name, np.concatenate([getattr(self, f.name), getattr(other, f.name)]))

    @property
    def id_division(self) -> np.ndarray:
        return (self.body // 10**11).astype(np.int32)

    def name_code(self) -> np.ndarray:
        """One integer per distinct name (Chinese: surname + characters; foreigners in their own range)."""
        code = self.sur.astype(np.int64) * 1_000_000 + self.g1.astype(np.int64) * 1000 + (self.g2 + 1)
        foreign = self.cat >= PASSPORT
        code[foreign] = (1_000_000_000 + self.nat[foreign].astype(np.int64) * 1_000_000
                         + self.sur[foreign].astype(np.int64) * 1000 + self.g1[foreign])
        return code

    def evidence_key(self) -> np.ndarray:
        """name + birth date + sex as one integer (the evidence a record without an ID is matched on)."""
        return (self.name_code() * 100_000 + (self.birth.astype(np.int64) + 50_000)) * 2 + (self.sex.astype(np.int64) - 1)


def _address(rng: np.random.Generator, div: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(div)
    road = (ROAD_START[div] + (rng.random(n) * ROAD_COUNT[div]).astype(np.int32)).astype(np.int16)
    no = rng.integers(1, 1500, n).astype(np.int16)
    room = (rng.integers(1, 33, n) * 100 + rng.integers(1, 7, n)).astype(np.int16)
    return road, no, room


def make_people(rng: np.random.Generator, cat: np.ndarray, birth: np.ndarray, sex: np.ndarray, today: int,
                tables: Tables, adult_only_jobs: bool = True) -> People:
    """New persons of the given categories, birth days and sexes; everything else sampled (as of ``today``)."""
    n = len(cat)
    chinese = cat <= MIGRANT
    foreign = ~chinese
    year_idx = (ymd_of(birth) // 10000 - _YEARS[0]).clip(0, len(_YEARS) - 1)
    age = age_years(birth, today)

    # identity numbers
    sh_born = (cat == HUKOU) & (rng.random(n) < 0.85)
    div = np.where(sh_born, SH_CODES[draw(rng, SH_CODE_CUM, year_idx)], OTHER_CODES[draw(rng, OTHER_CODE_CUM, year_idx)])
    seq = (rng.integers(0, 500, n) * 2 + (sex == 1)).astype(np.int64)
    nat = np.where(foreign, draw(rng, NAT_CUM, n=n), -1).astype(np.int8)
    prp_new = (cat == PRP) & (rng.random(n) < 0.5)
    ymd = ymd_of(birth)
    body = div.astype(np.int64) * 10**11 + ymd * 1000 + seq
    prp_seq = rng.integers(0, 1000, n)
    natnum = NAT_NUM[np.maximum(nat, 0)]
    body = np.where(cat == PRP, np.where(prp_new, 9 * 10**16 + 31 * 10**14, 8 * 10**16) + natnum * 10**11
                    + ymd * 1000 + prp_seq, body)
    body = np.where(cat == PASSPORT, 0, body)

    # names
    male = sex == 1
    sur = draw(rng, SURNAME_CUM, n=n).astype(np.int16)
    g_lo = np.where(male, 0, N_MALE_GIVEN)
    g_n = np.where(male, N_MALE_GIVEN, N_FEMALE_GIVEN)
    g1 = (g_lo + (rng.random(n) * g_n).astype(np.int64)).astype(np.int16)
    g2 = (g_lo + (rng.random(n) * g_n).astype(np.int64)).astype(np.int16)
    g2 = np.where(rng.random(n) < 0.3, -1, g2).astype(np.int16)
    fam = (np.maximum(nat, 0).astype(np.int64) * N_FOREIGN_NAMES + rng.integers(0, N_FOREIGN_NAMES, n))
    giv = (np.maximum(nat, 0).astype(np.int64) * N_FOREIGN_NAMES + np.where(male, 0, 4) + rng.integers(0, 4, n))
    sur = np.where(foreign, fam, sur).astype(np.int16)
    g1 = np.where(foreign, giv, g1).astype(np.int16)
    g2 = np.where(foreign, -1, g2).astype(np.int16)

    ethnic = np.where(chinese, draw(rng, ETHNIC_CUM, n=n), 0).astype(np.int8)

    # addresses: hukou division/address, residence (70% of hukou residents live at their hukou address)
    hk_div = draw(rng, DIV_CUM, n=n).astype(np.int8)
    hk_road, hk_no, hk_room = _address(rng, hk_div)
    res_div = draw(rng, DIV_CUM, n=n).astype(np.int8)
    res_road, res_no, res_room = _address(rng, res_div)
    same = (cat == HUKOU) & (rng.random(n) < 0.7)
    res_div = np.where(same, hk_div, res_div).astype(np.int8)
    res_road, res_no, res_room = (np.where(same, a, b) for a, b in
                                  ((hk_road, res_road), (hk_no, res_no), (hk_room, res_room)))
    hk_code = np.where(cat == HUKOU, DIV_CODE[hk_div], np.where(cat == MIGRANT, div, 0)).astype(np.int32)

    # marital status by age band
    band = np.searchsorted(_MARITAL_EDGES, age, side="right") - 1
    marital = (draw(rng, _MARITAL_CUM, band) + 1).astype(np.int8)
    marital = np.where(foreign, 0, marital).astype(np.int8)
    lo = birth.astype(np.int64) + 20 * 366
    mday = (lo + (rng.random(n) * np.maximum(today - lo, 1)).astype(np.int64)).clip(max=today - 1)
    marital_day = np.where(np.isin(marital, (2, 4)), mday, NO_DAY).astype(np.int32)

    # students
    level = np.full(n, -1, dtype=np.int8)
    u = rng.random(n)
    for i, (_, a0, a1, share) in enumerate(vocab.LEVELS):
        level[chinese & (age >= a0) & (age <= a1) & (u < share)] = i
    k = rng.integers(0, len(vocab.SCHOOL_NAMES), n)
    uni = rng.integers(0, len(vocab.UNIVERSITIES), n)
    school = np.where(level < 0, -1, np.where(level < N_K12, (level.astype(np.int64) * N_DIV + res_div) * len(vocab.SCHOOL_NAMES) + k,
                                              N_K12 * N_DIV * len(vocab.SCHOOL_NAMES) + uni)).astype(np.int32)

    # employment (working age, not studying)
    working = chinese & (age >= 18) & (age <= 59) & (level < 0)
    p_job = np.where(cat == HUKOU, 0.78, 0.85)
    employed = working & (rng.random(n) < p_job)
    employer = np.where(employed, draw(rng, tables.employer_cum, n=n), -1).astype(np.int32)
    insurance = np.where(employed, draw(rng, INSURANCE_CUM, n=n), 0).astype(np.int8)

    protected = rng.random(n) < 0.3
    return People(
        cat=cat.astype(np.int8), sex=sex.astype(np.int8), birth=birth.astype(np.int32),
        status=np.zeros(n, dtype=np.int8), status_day=np.full(n, NO_DAY, dtype=np.int32),
        body=body.astype(np.int64), check=check_values(body), prp_new=prp_new, nat=nat,
        sur=sur, g1=g1, g2=g2, ethnic=ethnic,
        hk_code=hk_code, hk_road=hk_road, hk_no=hk_no, hk_room=hk_room,
        res_div=res_div, res_road=res_road, res_no=res_no, res_room=res_room,
        hrss_div=res_div.copy(), hrss_road=res_road.copy(), hrss_no=res_no.copy(), hrss_room=res_room.copy(),
        marital=marital, marital_day=marital_day, employer=employer, insurance=insurance,
        school=school, level=level, protected=protected, twin_of=np.full(n, -1, dtype=np.int32),
    )


def make_unique(rng: np.random.Generator, p: People, new: np.ndarray, existing: np.ndarray | None = None) -> None:
    """Redraw the sequence digits of persons in ``new`` whose number collides (with each other or ``existing``)."""
    idx = np.flatnonzero(new & (p.body != 0))
    for _ in range(100):
        body = p.body[idx]
        order = np.argsort(body, kind="stable")
        dup_sorted = np.zeros(len(idx), dtype=bool)
        dup_sorted[1:] = body[order][1:] == body[order][:-1]
        dup = np.zeros(len(idx), dtype=bool)
        dup[order] = dup_sorted
        if existing is not None and len(existing):
            dup |= np.isin(body, existing)
        if not dup.any():
            break
        bad = idx[dup]
        is_prp = p.cat[bad] == PRP
        seq = np.where(is_prp, rng.integers(0, 1000, len(bad)),
                       rng.integers(0, 500, len(bad)) * 2 + (p.sex[bad] == 1))
        p.body[bad] = (p.body[bad] // 1000) * 1000 + seq
        p.check[bad] = check_values(p.body[bad])
    else:  # pragma: no cover - 100 rounds of collisions cannot happen with 1000 sequence numbers per day
        raise RuntimeError("could not make identity numbers unique")


def base_population(seed: int, persons: int, start: int, tables: Tables, twin_share: float) -> People:
    """The residents on day 0 (the full first extract), from (seed, persons) only."""
    rng = rng_for(seed, persons, -1, "base")
    n = persons
    cat = draw(rng, _cum(np.array([0.58, 0.38, 0.025, 0.015])), n=n).astype(np.int8)
    age = np.zeros(n, dtype=np.int64)
    for c in (HUKOU, MIGRANT, PASSPORT, PRP):
        m = cat == c
        age[m] = draw(rng, AGE_CUM[c], n=int(m.sum()))
    birth = start - 1 - np.floor((age + rng.random(n)) * 365.2425).astype(np.int64)
    sex = np.where(rng.random(n) < 0.5, 1, 2).astype(np.int8)

    # planted pairs: two persons with the same name, birth date, sex and residence district (different IDs)
    pairs = int(n * twin_share / 2)
    cand = np.flatnonzero((cat <= MIGRANT) & (age >= 16) & (age <= 24 + 35))
    pairs = min(pairs, len(cand) // 2)
    chosen = rng.choice(cand, 2 * pairs, replace=False) if pairs else np.empty(0, dtype=np.int64)
    a, b = chosen[:pairs], chosen[pairs:]
    birth[b], sex[b] = birth[a], sex[a]

    p = make_people(rng, cat, birth, sex, start, tables)
    for name in ("sur", "g1", "g2", "res_div", "hrss_div"):
        getattr(p, name)[b] = getattr(p, name)[a]
    road, no, room = _address(rng, p.res_div[b])
    p.res_road[b], p.res_no[b], p.res_room[b] = road, no, room
    p.hrss_road[b], p.hrss_no[b], p.hrss_room[b] = road, no, room
    p.twin_of[a], p.twin_of[b] = b, a
    p.protected[a] = p.protected[b] = True

    # already deceased or moved out of Shanghai (psb still holds them; health holds the deaths)
    yrs = age_years(p.birth, start)
    hk = (cat == HUKOU) & (p.twin_of < 0)
    p_death = np.where(yrs < 60, 0.0005, np.where(yrs < 80, 0.008, 0.04))
    dead = hk & (rng.random(n) < p_death)
    dday = start - 1 - rng.integers(0, 365, n)
    p.status[dead] = DECEASED
    p.status_day[dead] = np.maximum(dday[dead], p.birth[dead] + 1)
    out = hk & ~dead & (yrs >= 18) & (yrs <= 60) & (rng.random(n) < 0.004)
    p.status[out] = MOVED_OUT
    p.status_day[out] = start - 1 - rng.integers(0, 730, int(out.sum()))
    for arr in (p.employer,):
        arr[dead | out] = -1
    p.school[dead | out] = -1
    p.level[dead | out] = -1
    make_unique(rng, p, np.ones(n, dtype=bool))
    return p


# --------------------------------------------------------------------------------------------------------------
# Daily changes.


@dataclass(frozen=True)
class ChangeRates:
    """Daily change rates, as shares of the active residents (defaults: about 2% of persons change per day)."""

    births: float = 0.001          # newborns: health reports the birth; psb registers hukou births 1-3 days later
    deaths: float = 0.001          # health reports; psb deregisters (RKZT 死亡) 1-2 days later
    moves: float = 0.006           # change of residence: psb (户籍/居住证/境外) — hrss keeps the old address
    marriages: float = 0.005       # couples per eligible man/woman (two records per couple), hukou residents
    divorces: float = 0.002        # persons divorcing (married hukou residents), civil affairs
    job_changes: float = 0.006     # new employer (or a first job), hrss
    school_transfers: float = 0.001  # students changing school, education
    new_migrants: float = 0.002    # arrivals with a new 居住证 (60% also registered employed with hrss)
    new_foreigners: float = 0.0003  # new foreign residents


@dataclass
class Events:
    """What happened on one day (pids and the day each event took place)."""

    day: int
    births: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    birth_psb_lag: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    deaths: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    death_day: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    death_psb_lag: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    moves: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    move_day: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    marriages: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    divorces: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    registration_day: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # marriages then divorces
    job_changes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    transfers: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    new_migrants: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    new_migrants_employed: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    new_foreigners: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def counts(self) -> dict[str, int]:
        return {
            "births": len(self.births), "deaths": len(self.deaths), "moves": len(self.moves),
            "marriages": len(self.marriages), "divorces": len(self.divorces), "job_changes": len(self.job_changes),
            "school_transfers": len(self.transfers), "new_migrants": len(self.new_migrants),
            "new_foreigners": len(self.new_foreigners),
        }


def _pick(rng: np.random.Generator, eligible: np.ndarray, rate: float, weights: np.ndarray | None = None) -> np.ndarray:
    idx = np.flatnonzero(eligible)
    k = int(rng.binomial(len(idx), rate)) if len(idx) else 0
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if weights is None:
        return np.sort(rng.choice(idx, k, replace=False))
    keys = np.log(rng.random(len(idx))) / weights[idx]  # weighted sampling without replacement (Efraimidis-Spirakis)
    return np.sort(idx[np.argpartition(-keys, k - 1)[:k]])


def _lag(rng: np.random.Generator, n: int, probs: list[float]) -> np.ndarray:
    return draw(rng, _cum(np.array(probs)), n=n).astype(np.int64)


def step(p: People, seed: int, persons: int, d: int, today: int, tables: Tables, rates: ChangeRates) -> Events:
    """Apply the changes of day ``d`` (date ``today``) to ``p`` in place; return them."""
    rng = rng_for(seed, persons, d, "events")
    ev = Events(day=d)
    n = len(p)
    active = p.status == ACTIVE
    chinese = p.cat <= MIGRANT
    yrs = age_years(p.birth, today)
    taken = np.zeros(n, dtype=bool)

    # deaths (not of infants: a birth is registered by psb before anything else happens to the child)
    w = np.exp((yrs.astype(float) - 80.0) / 10.0)
    ev.deaths = _pick(rng, active & chinese & (yrs >= 1), rates.deaths * 1.0, w)
    ev.death_day = today - _lag(rng, len(ev.deaths), [0.5, 0.3, 0.2])
    ev.death_psb_lag = rng.integers(1, 3, len(ev.deaths))
    p.status[ev.deaths] = DECEASED
    p.status_day[ev.deaths] = ev.death_day
    taken[ev.deaths] = True

    # moves of residence (within Shanghai)
    ev.moves = _pick(rng, active & ~taken & (yrs >= 1), rates.moves)
    old = p.res_div[ev.moves].astype(np.int64)
    new = ((old + 1 + rng.integers(0, N_DIV - 1, len(old))) % N_DIV).astype(np.int8)
    p.res_div[ev.moves] = new
    p.res_road[ev.moves], p.res_no[ev.moves], p.res_room[ev.moves] = _address(rng, new)
    ev.move_day = today - _lag(rng, len(ev.moves), [0.4, 0.3, 0.2, 0.1])
    taken[ev.moves] = True

    # marriages (hukou residents; couples of a man and a woman) and divorces
    free = active & ~taken & (p.cat == HUKOU) & np.isin(p.marital, (1, 3, 4))
    men = np.flatnonzero(free & (p.sex == 1) & (yrs >= 22))
    women = np.flatnonzero(free & (p.sex == 2) & (yrs >= 20))
    couples = int(rng.binomial(min(len(men), len(women)), rates.marriages)) if len(men) and len(women) else 0
    ev.marriages = np.sort(np.concatenate([rng.choice(men, couples, replace=False),
                                           rng.choice(women, couples, replace=False)])).astype(np.int64)
    taken[ev.marriages] = True
    ev.divorces = _pick(rng, active & ~taken & (p.cat == HUKOU) & (p.marital == 2), rates.divorces)
    taken[ev.divorces] = True
    both = np.concatenate([ev.marriages, ev.divorces])
    ev.registration_day = today - _lag(rng, len(both), [0.7, 0.2, 0.1])
    p.marital[ev.marriages] = 2
    p.marital[ev.divorces] = 4
    p.marital_day[both] = ev.registration_day

    # job changes (or a first job) of working-age residents not at school
    ev.job_changes = _pick(rng, active & ~taken & chinese & (yrs >= 18) & (yrs <= 59) & (p.level < 0),
                           rates.job_changes)
    new_emp = draw(rng, tables.employer_cum, n=len(ev.job_changes)).astype(np.int32)
    new_emp = np.where(new_emp == p.employer[ev.job_changes], (new_emp + 1) % len(tables.employer_name), new_emp)
    p.employer[ev.job_changes] = new_emp
    p.insurance[ev.job_changes] = 0
    taken[ev.job_changes] = True

    # school transfers (district schools)
    ev.transfers = _pick(rng, active & ~taken & (p.level >= 0) & (p.level < N_K12), rates.school_transfers)
    nk = len(vocab.SCHOOL_NAMES)
    s = p.school[ev.transfers].astype(np.int64)
    p.school[ev.transfers] = ((s // nk) * nk + (s % nk + 1 + rng.integers(0, nk - 1, len(s))) % nk).astype(np.int32)
    taken[ev.transfers] = True

    # new persons: births, arriving migrants and foreigners
    n_active = int(active.sum())
    nb = int(rng.binomial(n_active, rates.births))
    nm = int(rng.binomial(n_active, rates.new_migrants))
    nf = int(rng.binomial(n_active, rates.new_foreigners))
    cat = np.concatenate([np.where(rng.random(nb) < 0.85, HUKOU, MIGRANT), np.full(nm, MIGRANT),
                          np.where(rng.random(nf) < 0.6, PASSPORT, PRP)]).astype(np.int8)
    birth = np.concatenate([
        today - _lag(rng, nb, [0.3, 0.3, 0.15, 0.1, 0.05, 0.05, 0.05]),
        today - 1 - np.floor((rng.integers(18, 46, nm) + rng.random(nm)) * 365.2425).astype(np.int64),
        today - 1 - np.floor((rng.integers(22, 60, nf) + rng.random(nf)) * 365.2425).astype(np.int64),
    ])
    sex = np.where(rng.random(len(cat)) < 0.5, 1, 2).astype(np.int8)
    if len(cat):
        newp = make_people(rng, cat, birth, sex, today, tables)
        newp.employer[:nb] = -1
        newp.school[:nb] = -1
        newp.level[:nb] = -1
        newp.marital[:nb] = 1
        employed = np.zeros(len(cat), dtype=bool)
        employed[nb:nb + nm] = rng.random(nm) < 0.6
        newp.employer[nb:nb + nm] = np.where(employed[nb:nb + nm],
                                             draw(rng, tables.employer_cum, n=nm), -1).astype(np.int32)
        newp.insurance[nb:nb + nm] = 0
        newp.school[nb:nb + nm] = -1
        newp.level[nb:nb + nm] = -1
        existing = p.body[p.body != 0]
        p.extend(newp)
        make_unique(rng, p, np.arange(len(p)) >= n, existing)
        pid = np.arange(n, len(p))
        ev.births = pid[:nb]
        ev.birth_psb_lag = rng.integers(1, 4, nb)
        ev.new_migrants = pid[nb:nb + nm]
        ev.new_migrants_employed = pid[nb:nb + nm][employed[nb:nb + nm]]
        ev.new_foreigners = pid[nb + nm:]
    return ev
