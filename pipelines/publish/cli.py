"""``python -m pipelines publish …``: prepare, approve, reject, release, rollback, list (and repair, review).

Every sub-command prints JSON (the same dicts the DAG gets from pipelines.publish.flow) and exits non-zero when
the operation is refused (e.g. publishing a release that is not approved).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _print(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def cmd_prepare(args) -> int:
    from pipelines.publish import flow
    from pipelines.publish.datasets import load_datasets

    codes = [d.code for d in load_datasets()] if args.all else [args.dataset]
    run_ids = args.runs or flow.latest_run_ids()
    if not run_ids:
        print("no successful population run to release from (give --runs)", file=sys.stderr)
        return 1
    results = []
    for code in codes:
        r = flow.prepare_release(code, run_ids)
        results.append(r)
        print(r["review_summary"], end="\n\n", file=sys.stderr)
    _print([{k: v for k, v in r.items() if k != "review_summary"} for r in results])
    return 1 if any(r["status"] == "blocked" for r in results) else 0


def _guard(fn, *a, **kw) -> int:
    from pipelines.publish.flow import PublishError

    try:
        _print(fn(*a, **kw))
    except (PublishError, KeyError, ValueError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_approve(args) -> int:
    from pipelines.publish import flow

    return _guard(flow.approve_release, args.release_id, args.by, args.note)


def cmd_reject(args) -> int:
    from pipelines.publish import flow

    return _guard(flow.reject_release, args.release_id, args.by, args.note)


def cmd_release(args) -> int:
    from pipelines.publish import flow

    return _guard(flow.publish_release, args.release_id, args.by)


def cmd_rollback(args) -> int:
    from pipelines.publish import flow

    return _guard(flow.rollback, args.dataset, args.by)


def cmd_list(args) -> int:
    from pipelines.publish import flow

    rows = flow.list_releases(args.dataset)
    if args.json:
        _print(rows)
        return 0
    print(f"{'release':<58} {'status':<18} {'rows':>7}  {'current':<7} runs")
    for r in rows:
        print(f"{r['release_id']:<58} {r['status']:<18} {r['row_count']:>7}  {'yes' if r['current'] else '':<7} "
              f"{','.join(map(str, r['source_run_ids']))}")
    return 0


def cmd_review(args) -> int:
    from pipelines.publish import flow

    return _guard(flow.review_report, args.release_id)


def cmd_repair(args) -> int:
    from pipelines.publish import flow

    return _guard(flow.repair)


def register(subparsers) -> None:
    p = subparsers.add_parser("publish", help="open-data releases: prepare, approve, reject, release, rollback, list")
    sub = p.add_subparsers(dest="publish_command", required=True)

    s = sub.add_parser("prepare", help="build, review and write a new release (not served until published)")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", metavar="CODE")
    which.add_argument("--all", action="store_true", help="every dataset under DATASETS_DIR")
    s.add_argument("--runs", type=int, nargs="+", metavar="RUN_ID",
                   help="source runs (default: the newest successful population run)")
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("approve", help="approve a release awaiting approval")
    s.add_argument("release_id")
    s.add_argument("--by", required=True, metavar="NAME")
    s.add_argument("--note")
    s.set_defaults(func=cmd_approve)

    s = sub.add_parser("reject", help="reject a release awaiting approval")
    s.add_argument("release_id")
    s.add_argument("--by", required=True, metavar="NAME")
    s.add_argument("--note")
    s.set_defaults(func=cmd_reject)

    s = sub.add_parser("release", help="publish an approved release (atomic switch of table, files, catalog)")
    s.add_argument("release_id")
    s.add_argument("--by", metavar="NAME", help="who releases it (recorded in the changelog)")
    s.set_defaults(func=cmd_release)

    s = sub.add_parser("rollback", help="serve the previous published release of a dataset again")
    s.add_argument("dataset", metavar="DATASET")
    s.add_argument("--by", metavar="NAME")
    s.set_defaults(func=cmd_rollback)

    s = sub.add_parser("list", help="releases, newest first")
    s.add_argument("--dataset", metavar="CODE")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("review", help="print the privacy review report of a release")
    s.add_argument("release_id")
    s.set_defaults(func=cmd_review)

    s = sub.add_parser("repair", help="make the current symlinks and catalog files agree with the warehouse")
    s.set_defaults(func=cmd_repair)


def main(argv: list[str] | None = None) -> int:  # for `python -m pipelines.publish.cli`
    parser = argparse.ArgumentParser(prog="python -m pipelines")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
