"""``python -m pipelines.simulate``: write the simulated departments' sources and report time and peak memory.

Defaults come from pipelines.settings (SIM_PERSONS, SIM_DAYS, SIM_SEED, SIM_START, LANDING_DIR, SIM_API_DIR,
FRONTDB_URL); ``--no-frontdb`` skips the 前置库 tables. ``--day D`` writes one day only (``write_day``).
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date
from pathlib import Path

from pipelines.settings import settings


def main(argv: list[str] | None = None) -> int:
    from pipelines import simulate

    ap = argparse.ArgumentParser(prog="python -m pipelines.simulate", description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=settings.sim_persons)
    ap.add_argument("--days", type=int, default=settings.sim_days)
    ap.add_argument("--seed", type=int, default=settings.sim_seed)
    ap.add_argument("--start", type=date.fromisoformat, default=settings.sim_start)
    ap.add_argument("--landing-dir", type=Path, default=settings.landing_dir)
    ap.add_argument("--api-dir", type=Path, default=settings.sim_api_dir)
    ap.add_argument("--no-frontdb", action="store_true")
    ap.add_argument("--day", type=int, default=None, help="write only this day (write_day)")
    args = ap.parse_args(argv)
    url = None if args.no_frontdb else settings.frontdb_url
    t0 = time.perf_counter()
    if args.day is None:
        manifest = simulate.generate(args.persons, args.days, args.seed, args.start, args.landing_dir, args.api_dir, url)
    else:
        manifest = simulate.write_day(args.day, args.persons, args.seed, args.start, args.landing_dir, args.api_dir, url)
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.persons} persons, days {sorted(manifest.days)}: {manifest.rows()} rows in {secs:.1f} s, "
          f"peak RSS {rss:.0f} MB; manifest {simulate.manifest_path(args.landing_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
