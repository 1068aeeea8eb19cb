"""Identity verification (身份核验) for authorised departments: does this ID number and name belong to a living
resident? The answer is one boolean, never the record.

- The number is normalised and checked by the warehouse's own rules (``pipelines.identity.check_ric``: 15 -> 18
  digits, lower-case x, full-width characters, spaces); an invalid number is refused with its reason code.
- The name is compared as the warehouse compares names (``population.norm_name`` in SQL, on both sides).
- Living: a golden person (``population.person``, id_type RIC) who is not recorded as deceased — neither
  population_status 'deceased' nor a death date (a death reported but not yet deregistered counts as deceased).
  A person who moved out of Shanghai is alive and still matches; retired identities (person_retired) do not.
- 'No such number' and 'wrong name' run the same statements (one index probe on (id_type, id_number), one audit
  insert, one commit) and return the same shape, so neither the body nor the timing tells them apart.
- Every call, including a refused number, is written to ``api.verification_log`` in the same transaction as the
  lookup: client, department, time, outcome and an HMAC-SHA256 of the number keyed with the keys file's
  ``audit_salt`` — never the number nor the name. An auditor holding the salt can find the calls about a number;
  someone holding only the database cannot reverse the hashes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

from pipelines.identity import check_ric
from pipelines.population.attributes import ID_RIC
from pipelines.warehouse import connect

SHANGHAI = ZoneInfo("Asia/Shanghai")

REASON_TEXT = {
    "ID_BAD_FORMAT": "it is not 18 characters (17 digits and a digit or X) or 15 digits",
    "ID_BAD_CHECK_DIGIT": "its check character (the 18th) is wrong",
    "ID_BAD_BIRTH_DATE": "the birth date inside it is not a real date, or is in the future",
    "ID_UNKNOWN_DIVISION": "its first six digits are not a GB/T 2260 administrative division",
}

MATCH_SQL = """
SELECT EXISTS (
    SELECT 1 FROM population.person p
    WHERE p.id_type = %(id_type)s AND p.id_number = %(id_number)s
      AND population.norm_name(p.name) = population.norm_name(%(name)s)
      AND p.population_status IS DISTINCT FROM 'deceased' AND p.death_date IS NULL
)"""

LOG_SQL = """
INSERT INTO api.verification_log (client, department, id_hash, outcome, remote_addr)
VALUES (%(client)s, %(department)s, %(id_hash)s, %(outcome)s, %(remote_addr)s)"""


class InvalidIdNumber(ValueError):
    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__(
            "id_number is not a valid 公民身份号码: "
            + "; ".join(f"{r} ({REASON_TEXT.get(r, r)})" for r in reasons)
        )


@dataclass(frozen=True)
class Caller:
    client: str
    department: str
    remote_addr: str | None


def normalise_id(id_number: str, today: dt.date | None = None) -> tuple[str | None, list[str]]:
    """(the normalised 18-character number, []) or (None, reason codes)."""
    today = today or dt.datetime.now(SHANGHAI).date()
    checked = check_ric(pd.Series([id_number], dtype=object), today).iloc[0]
    reasons = [r for r in checked["reasons"].strip("{}").split(",") if r]
    if reasons or checked["id_number"] is None:
        return None, reasons or ["ID_BAD_FORMAT"]
    return checked["id_number"], []


def id_hash(salt: bytes, value: str) -> str:
    return hmac.new(salt, value.encode("utf-8"), hashlib.sha256).hexdigest()


def verify(id_number: str, name: str, caller: Caller, salt: bytes) -> bool:
    """True when (id_number, name) is a living resident; every call logged. Raises InvalidIdNumber (logged too)."""
    normalised, reasons = normalise_id(id_number)
    with connect() as conn:
        with conn.transaction():
            if normalised is None:
                outcome, match = "invalid_id", False
                hashed = id_hash(salt, id_number.strip())
            else:
                match = conn.execute(MATCH_SQL, {"id_type": ID_RIC, "id_number": normalised,
                                                 "name": name}).fetchone()[0]
                outcome = "match" if match else "no_match"
                hashed = id_hash(salt, normalised)
            conn.execute(LOG_SQL, {"client": caller.client, "department": caller.department, "id_hash": hashed,
                                   "outcome": outcome, "remote_addr": caller.remote_addr})
    if normalised is None:
        raise InvalidIdNumber(reasons)
    return bool(match)
