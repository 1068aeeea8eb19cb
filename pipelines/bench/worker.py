"""The benchmark's worker: one base size in its own process (started by ``pipelines.bench.main``).

Its environment names the benchmark's own warehouse and 前置库 databases, landing folder, API directory and URL,
reports and publication folders, so every stage — including code that reads ``pipelines.settings`` rather than
taking a URL — works on those and never on the demo's; and the process's memory is the pipeline's alone.
Progress goes to stdout as ``TICK <what>`` lines (a step done) and ``NOTE <text>`` lines (a stage's figures); the result is pickled to the path given in the spec.
"""

from __future__ import annotations

import json
import pickle
import sys
from datetime import date
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    spec = json.loads((argv or sys.argv[1:])[0])
    from pipelines.bench.runner import bench_base

    def tick(what: str) -> None:
        print(f"TICK {what}", flush=True)

    def note(what: str) -> None:
        print(f"NOTE {what}", flush=True)

    result = bench_base(
        spec["persons"], spec["role"], seed=spec["seed"], start=date.fromisoformat(spec["start"]),
        scale=spec["scale"], root=Path(spec["root"]), sampler_interval=spec["sample_interval"], tick=tick,
        with_copy=spec["with_copy"], vacuum_between=spec["vacuum_between"], note=note,
        extract_workers=spec.get("extract_workers", 1), explain_increment=spec.get("explain_increment", False),
    )
    with open(spec["out"], "wb") as fh:
        pickle.dump(result, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
