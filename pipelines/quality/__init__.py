"""The data-quality gate: GX suites (expectations/*.json) run in SQL, results by GB/T 36344 dimension, reports.

Public API (imported lazily so that importing this package stays cheap, e.g. from a DAG file):

    from pipelines.quality import run_gate, enforce, QualityGateFailed, GateResult
    result = run_gate(run_id)          # validate, record quality.* rows, build Data Docs and the scorecard
    enforce(result)                    # raise QualityGateFailed naming the failed blocking rules

See docs/quality.md.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "run_gate": "pipelines.quality.gate",
    "enforce": "pipelines.quality.gate",
    "QualityGateFailed": "pipelines.quality.gate",
    "GateResult": "pipelines.quality.gate",
    "Failure": "pipelines.quality.gate",
    "load_suites": "pipelines.quality.suites",
    "load_suite": "pipelines.quality.suites",
    "SuiteFileError": "pipelines.quality.suites",
    "DIMENSIONS": "pipelines.quality.suites",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:  # PEP 562: great_expectations is imported on first use, not at import
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
