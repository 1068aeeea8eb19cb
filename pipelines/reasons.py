"""Machine-readable reason codes for quarantined rows and warnings, listed once (docs/reason-codes.md mirrors it).

A *reason* rejects the row (it goes to quarantine); a *warning* is kept on the accepted record.
"""

from __future__ import annotations

# Identifier (公民身份号码 and other documents)
ID_BAD_FORMAT = "ID_BAD_FORMAT"                # not 15/18 characters of digits (+X), after normalisation
ID_BAD_CHECK_DIGIT = "ID_BAD_CHECK_DIGIT"      # ISO 7064 MOD 11-2 check character wrong
ID_BAD_BIRTH_DATE = "ID_BAD_BIRTH_DATE"        # birth date inside the ID impossible or in the future
ID_UNKNOWN_DIVISION = "ID_UNKNOWN_DIVISION"    # first six digits not a GB/T 2260 code, current or retired
ID_TYPE_UNKNOWN = "ID_TYPE_UNKNOWN"            # 证件类型 not one we know
FOREIGN_ID_BAD_FORMAT = "FOREIGN_ID_BAD_FORMAT"  # passport / permanent-residence number malformed
SEX_MISMATCH = "SEX_MISMATCH"                  # declared sex disagrees with the ID's sequence digit
BIRTH_DATE_MISMATCH = "BIRTH_DATE_MISMATCH"    # declared birth date disagrees with the ID
# Record
BAD_DATE = "BAD_DATE"                          # a date field that is not a real date
NAME_MISSING = "NAME_MISSING"                  # no name
KEY_MISSING = "KEY_MISSING"                    # the source record has no key (cannot be tracked or updated)
MALFORMED_ROW = "MALFORMED_ROW"                # wrong number of fields, unparseable XML element, bad JSON, NUL, surrogate
BAD_DIVISION = "BAD_DIVISION"                  # a division field that is not a GB/T 2260 code
# Matching (rows held in the review queue are quarantined with one of these until a person decides)
REVIEW_AMBIGUOUS_MATCH = "REVIEW_AMBIGUOUS_MATCH"  # no usable ID; evidence matches several persons
REVIEW_NO_MATCH = "REVIEW_NO_MATCH"                # no usable ID; evidence matches nobody

# Warnings (kept on the record, not rejecting it)
W_ID_UPGRADED_15 = "W_ID_UPGRADED_15"          # 15-digit legacy number upgraded to 18 digits
W_DIVISION_RETIRED = "W_DIVISION_RETIRED"      # division code retired (e.g. 310103 卢湾), still valid on IDs
W_DIVISION_POSTDATES_BIRTH = "W_DIVISION_POSTDATES_BIRTH"  # district created after the birth year
W_ID_NORMALISED = "W_ID_NORMALISED"            # full-width digits, spaces or lowercase x were normalised

REASONS = [v for k, v in dict(globals()).items() if k.isupper() and not k.startswith("W_") and isinstance(v, str)]
WARNINGS = [v for k, v in dict(globals()).items() if k.startswith("W_") and isinstance(v, str)]
