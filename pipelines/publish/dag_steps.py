"""The publish DAG's steps (dags/publish_population.py): prepare every dataset's release, publish what was
approved automatically, turn the rest into Human-in-the-loop requests, and apply the person's decisions.

Only small dicts cross task boundaries (release ids, statuses, the review summary a person reads).
"""

from __future__ import annotations

import logging

from pipelines.publish import flow

log = logging.getLogger(__name__)

APPROVE, REJECT = "Approve", "Reject"


def source_runs(triggering_asset_events: dict | None) -> list[int]:
    """The population runs that triggered this publication (Asset event extras), else the latest successful."""
    run_ids: set[int] = set()
    for events in (triggering_asset_events or {}).values():
        for event in events:
            run_id = (getattr(event, "extra", None) or {}).get("run_id")
            if run_id is not None:
                run_ids.add(int(run_id))
    return sorted(run_ids) or flow.latest_run_ids()


def runs_to_publish(triggering_asset_events: dict | None) -> list[int]:
    """source_runs, refusing to go on without any (nothing was ever reconciled)."""
    run_ids = source_runs(triggering_asset_events)
    if not run_ids:
        raise flow.PublishError("no successful population run to publish from")
    return run_ids


def dataset_codes(run_ids: list[int]) -> list[str]:
    """The datasets due for these runs (flow.due_datasets: every daily one, the others once per period of their
    update_frequency): the prepare task is mapped over this list."""
    codes = flow.due_datasets(run_ids)
    log.info("datasets due: %s", ", ".join(codes) or "none")
    return codes


def _brief(p: dict) -> dict:
    """What crosses the task boundary of a prepared release (not its directory)."""
    return {k: p.get(k) for k in ("release_id", "dataset_code", "version", "status", "needs_approval",
                                  "review_summary", "row_count")}


def prepare_one(dataset_code: str, run_ids: list[int]) -> dict:
    """One mapped prepare task: build, review and write a release of one dataset."""
    p = flow.prepare_release(dataset_code, run_ids)
    log.info("%s: %s (%s rows)%s", p["release_id"], p["status"], p.get("row_count"),
             " — needs approval" if p["needs_approval"] else "")
    return _brief(p)


def prepare_all(run_ids: list[int]) -> list[dict]:
    """The release of every dataset due, one after the other (the DAG maps prepare_one instead)."""
    if not run_ids:
        raise flow.PublishError("no successful population run to publish from")
    return [prepare_one(code, run_ids) for code in dataset_codes(run_ids)]


def publish_auto_approved(prepared: list[dict]) -> list[str]:
    """Publish every release the review approved automatically; return the dataset codes published."""
    published = []
    for p in prepared:
        if p["status"] == "approved" and not p["needs_approval"]:
            flow.publish_release(p["release_id"], approved_by="auto (quality gate + privacy review passed)")
            published.append(p["dataset_code"])
    return published


def pending(prepared: list[dict]) -> list[dict]:
    """The releases that wait for a person, in a stable order (the order of the HITL requests)."""
    return [p for p in prepared if p["status"] == "awaiting_approval"]


def approval_requests(prepared: list[dict]) -> list[dict]:
    """One Human-in-the-loop request per pending release: subject and body (Markdown: the review report)."""
    return [
        {
            "subject": f"批准发布 Approve release {p['release_id']} ({p['dataset_code']})",
            "body": (f"**Release** `{p['release_id']}` · **rows** {p['row_count']}\n\n"
                     f"{p['review_summary']}\n\n"
                     "Approve publishes it as the current release (atomically); Reject withdraws it. "
                     "The full review is in the release's `review.json` and `python -m pipelines publish review`."),
        }
        for p in pending(prepared)
    ]


def apply_decisions(pending_releases: list[dict], decisions: list[dict | None]) -> list[str]:
    """Publish the approved releases, reject the rejected; a release with no answer (timed out) stays waiting.
    Returns the dataset codes published."""
    published = []
    for release, decision in zip(pending_releases, decisions, strict=True):
        if not decision:
            log.warning("%s: no decision; it stays awaiting approval", release["release_id"])
            continue
        chosen = decision.get("chosen_options") or []
        who = (decision.get("responded_by_user") or {}).get("name") or "unknown"
        if APPROVE in chosen:
            flow.approve_release(release["release_id"], by=who, note="approved in Airflow (Human-in-the-loop)")
            flow.publish_release(release["release_id"], approved_by=who)
            published.append(release["dataset_code"])
        else:
            flow.reject_release(release["release_id"], by=who, note="rejected in Airflow (Human-in-the-loop)")
    return published
