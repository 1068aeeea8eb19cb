"""The defects planted in the simulated sources: their rates, their kinds and the counter each one is counted in.

Row defects: every row carries at most one defect, so the counts are exact (a row with a wrong check digit has
nothing else wrong). A rate is the probability that an *eligible* row that has no defect yet gets this one; kinds
are drawn in the order of ``KINDS``, so the realised share is a little lower than the rate. Eligibility is noted per
kind below (e.g. a 15-digit legacy number only for people born in the 1900s, lowercase x only for numbers whose
check character is X). Persons marked *protected* (30% of persons, all planted same-name pairs) never get a defect
in a 公安 (psb) row: the cross-department defects are planted on them only, so the person the other department
disagrees with, or is matched to by evidence, is surely in the golden record.

File defects (counted per file, in the counters ``EMPTY_FILE`` and ``MALFORMED_FILE``) and late files are planted
on given days, not at rates: see ``DefectRates.empty_file_days``, ``malformed_xml_day`` and ``late_file_days``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from pipelines import reasons as R

# File-level counters (quarantine.source_file reasons)
EMPTY_FILE = "EMPTY_FILE"
MALFORMED_FILE = "MALFORMED_FILE"


@dataclass(frozen=True)
class DefectRates:
    """Rates of the planted defects (see the module docstring for what a rate means). ``DefectRates.none()``
    plants nothing at all (no row defects, no empty/malformed/late files, no same-name pairs)."""

    # identity numbers (sources with 公民身份号码)
    id_15_digit: float = 0.01             # W_ID_UPGRADED_15: legacy 15-digit number (born 1900-1999)
    id_lowercase_x: float = 0.10          # W_ID_NORMALISED: check character 'x' (only numbers ending in X)
    id_fullwidth: float = 0.005           # W_ID_NORMALISED: full-width digits (０-９)
    id_spaces: float = 0.005              # W_ID_NORMALISED: spaces around or inside the number
    id_bad_check_digit: float = 0.01      # ID_BAD_CHECK_DIGIT
    id_bad_birth_date: float = 0.005      # ID_BAD_BIRTH_DATE: e.g. 19990230 inside the number (check digit valid)
    id_unknown_division: float = 0.005    # ID_UNKNOWN_DIVISION: 310199 (check digit valid)
    id_division_postdates_birth: float = 0.005  # W_DIVISION_POSTDATES_BIRTH: 310151 on someone born before 2016
    # declared values against the number
    sex_mismatch: float = 0.005           # SEX_MISMATCH
    birth_date_mismatch: float = 0.005    # BIRTH_DATE_MISMATCH: a real date 1-400 days off
    bad_date: float = 0.005               # BAD_DATE: birth date field impossible (1999-02-30 / 19990230)
    name_missing: float = 0.005           # NAME_MISSING
    key_missing: float = 0.002            # KEY_MISSING: the source record key empty
    # division fields
    division_retired: float = 0.05        # W_DIVISION_RETIRED: 310103/310108/310230/310119 for 310101/310106/310151/310115
    bad_division: float = 0.005           # BAD_DIVISION: 310199 in a division field
    # duplicates (same source key): extra rows right after the original
    duplicate_exact: float = 0.01         # DUPLICATE_EXACT: the same row again
    duplicate_near: float = 0.005         # DUPLICATE_NEAR: again with a space in the name / full-width digits in the address
    # CSV only
    malformed_row: float = 0.005          # MALFORMED_ROW: a field missing or one too many
    # hrss and education only, on protected persons
    no_id_unique: float = 0.02            # NO_ID_MATCHABLE: no ID; name+birth+sex unique, district = psb's
    no_id_ambiguous: float = 0.5          # REVIEW_AMBIGUOUS_MATCH: no ID, one of a planted same-name pair
    conflict_name: float = 0.02           # CONFLICT_NAME (hrss): one given-name character differs from psb's
    conflict_residence: float = 0.02      # CONFLICT_RESIDENCE (hrss): another district (and address) than psb's
    # foreign residents (XLSX)
    foreign_id_bad_format: float = 0.01   # FOREIGN_ID_BAD_FORMAT: a '#' inside the passport / PRP number
    id_type_unknown: float = 0.005        # ID_TYPE_UNKNOWN: 证件种类 '其他证件'
    # population
    twin_share: float = 0.004             # share of base persons in planted same-name/birth/sex/district pairs
    # whole files, by day (days outside the simulated range are ignored)
    empty_file_days: tuple[int, ...] = (3,)   # an extra 0-byte file (in empty_file_source's folder)
    malformed_xml_day: int | None = 1         # an extra civil_marriage XML file cut off in the middle
    late_file_days: tuple[int, ...] = (2, 4)  # on day d, a file with part of day d-1's rows into d-1's folder
    empty_file_source: str = "education_student"     # the file source that drops the empty file
    late_file_source: str = "psb_residence_permit"   # the file source that drops late files

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not 0.0 <= v <= 1.0:
                raise ValueError(f"DefectRates.{f.name} must be within [0, 1], not {v}")
        if any(d < 2 for d in self.late_file_days):
            raise ValueError("late_file_days: a late file goes into the previous increment's folder, so day >= 2")

    @classmethod
    def none(cls) -> "DefectRates":
        zero = {f.name: 0.0 for f in fields(cls) if f.type in ("float", float)}
        return cls(**zero, empty_file_days=(), malformed_xml_day=None, late_file_days=())

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# Row defect kinds: (code, counter name, DefectRates attribute). Order = the order they are drawn in.
ID_15, ID_LOWER_X, ID_FULLWIDTH, ID_SPACES = 1, 2, 3, 4
ID_BAD_CHECK, ID_BAD_BIRTH, ID_UNKNOWN_DIV, ID_POSTDATES = 5, 6, 7, 8
SEX_MISMATCH, BIRTH_MISMATCH, BAD_DATE, NAME_MISSING, KEY_MISSING = 9, 10, 11, 12, 13
DIV_RETIRED, BAD_DIVISION = 14, 15
NO_ID_UNIQUE, NO_ID_AMBIGUOUS, CONFLICT_NAME, CONFLICT_RES = 16, 17, 18, 19
FOREIGN_BAD, ID_TYPE_UNKNOWN = 20, 21
MALFORMED = 22
DUP_EXACT, DUP_NEAR = 23, 24

KINDS: list[tuple[int, str, str]] = [
    (NO_ID_AMBIGUOUS, R.REVIEW_AMBIGUOUS_MATCH, "no_id_ambiguous"),
    (NO_ID_UNIQUE, "NO_ID_MATCHABLE", "no_id_unique"),
    (CONFLICT_NAME, "CONFLICT_NAME", "conflict_name"),
    (CONFLICT_RES, "CONFLICT_RESIDENCE", "conflict_residence"),
    (ID_15, R.W_ID_UPGRADED_15, "id_15_digit"),
    (ID_LOWER_X, R.W_ID_NORMALISED, "id_lowercase_x"),
    (ID_FULLWIDTH, R.W_ID_NORMALISED, "id_fullwidth"),
    (ID_SPACES, R.W_ID_NORMALISED, "id_spaces"),
    (ID_BAD_CHECK, R.ID_BAD_CHECK_DIGIT, "id_bad_check_digit"),
    (ID_BAD_BIRTH, R.ID_BAD_BIRTH_DATE, "id_bad_birth_date"),
    (ID_UNKNOWN_DIV, R.ID_UNKNOWN_DIVISION, "id_unknown_division"),
    (ID_POSTDATES, R.W_DIVISION_POSTDATES_BIRTH, "id_division_postdates_birth"),
    (SEX_MISMATCH, R.SEX_MISMATCH, "sex_mismatch"),
    (BIRTH_MISMATCH, R.BIRTH_DATE_MISMATCH, "birth_date_mismatch"),
    (BAD_DATE, R.BAD_DATE, "bad_date"),
    (NAME_MISSING, R.NAME_MISSING, "name_missing"),
    (KEY_MISSING, R.KEY_MISSING, "key_missing"),
    (DIV_RETIRED, R.W_DIVISION_RETIRED, "division_retired"),
    (BAD_DIVISION, R.BAD_DIVISION, "bad_division"),
    (FOREIGN_BAD, R.FOREIGN_ID_BAD_FORMAT, "foreign_id_bad_format"),
    (ID_TYPE_UNKNOWN, R.ID_TYPE_UNKNOWN, "id_type_unknown"),
    (MALFORMED, R.MALFORMED_ROW, "malformed_row"),
    (DUP_EXACT, "DUPLICATE_EXACT", "duplicate_exact"),
    (DUP_NEAR, "DUPLICATE_NEAR", "duplicate_near"),
]
COUNTER = {code: counter for code, counter, _ in KINDS}
RATE_ATTR = {code: attr for code, _, attr in KINDS}
ID_REJECTING = (ID_BAD_CHECK, ID_BAD_BIRTH, ID_UNKNOWN_DIV, NO_ID_UNIQUE, NO_ID_AMBIGUOUS, MALFORMED)

# Informational per-row counts (not defects): what downstream will also see, planted by nature, not by rate.
INFO_RETIRED_ID = 1      # 'id_division_retired': a valid ID whose division is retired (310103 on someone born 1980)
INFO_LATE = 2            # 'late_event': the event date is before the day of the update
INFO_STALE_RES = 4       # 'stale_residence': hrss still has the address from before a move (psb has the new one)
INFO_NAMES = {INFO_RETIRED_ID: "id_division_retired", INFO_LATE: "late_event", INFO_STALE_RES: "stale_residence"}
# the W_ID_NORMALISED kinds, broken down in the info counters
NORMALISED_DETAIL = {ID_LOWER_X: "id_lowercase_x", ID_FULLWIDTH: "id_fullwidth", ID_SPACES: "id_spaces"}
