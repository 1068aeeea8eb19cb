"""Identifier rules: 公民身份号码 (ric), foreigners' documents (foreign), GB/T 2260 divisions (divisions).

The batch checks (``check_identities``, ``identity_arrays``…, pipelines/identity/checks.py) are named here and
imported when first used (a module ``__getattr__``): they bring pandas, and a process that needs only the division
tables (a publication task: ``pipelines.identity.divisions``) would otherwise import it for them — 0.2 s of every
such task's start.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["check_identities", "identity_arrays", "normalise_id_type", "check_ric", "check_passport", "check_prp",
           "ID_TYPE_ALIASES"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(importlib.import_module("pipelines.identity.checks"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
