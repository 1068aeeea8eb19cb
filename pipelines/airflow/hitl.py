"""Answering Airflow 3 Human-in-the-loop requests without the UI — for the demo and the tests.

In production a person answers in the Airflow UI (Required actions). Here the same record is written that the
api-server's HITL endpoint writes (``PATCH …/hitlDetails``): the response on the HITL detail, then the parked task
instance is resumed with the response as its event.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import joinedload


def pending_requests(dag_id: str) -> list[dict]:
    """Open HITL requests of a DAG: task instances parked in AWAITING_INPUT with their subject and body."""
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        tis = session.scalars(
            select(TI).where(TI.dag_id == dag_id, TI.state == TaskInstanceState.AWAITING_INPUT)
            .options(joinedload(TI.hitl_detail))
        ).unique().all()
        return [
            {"run_id": ti.run_id, "task_id": ti.task_id, "map_index": ti.map_index,
             "subject": ti.hitl_detail.subject, "body": ti.hitl_detail.body, "options": ti.hitl_detail.options}
            for ti in tis if ti.hitl_detail is not None and not ti.hitl_detail.response_received
        ]


def respond(dag_id: str, run_id: str, task_id: str, map_index: int, option: str, user: str) -> None:
    """Record ``option`` as ``user``'s answer and resume the task (what the UI's Approve/Reject button does)."""
    from airflow.models.hitl import HITLUser
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.trigger import handle_event_submit
    from airflow.sdk import timezone
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.scalar(select(TI).where(TI.dag_id == dag_id, TI.run_id == run_id, TI.task_id == task_id,
                                             TI.map_index == map_index).options(joinedload(TI.hitl_detail)))
        detail = ti.hitl_detail
        if option not in (detail.options or []):
            raise ValueError(f"{option!r} is not one of {detail.options}")
        detail.responded_by = HITLUser(id=user, name=user)
        detail.responded_at = timezone.utcnow()
        detail.chosen_options = [option]
        detail.params_input = {}
        session.add(detail)
        handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)


def answer_all(dag_id: str, decide, user: str, timeout_s: float = 600, until=None) -> list[dict]:
    """Answer every HITL request of ``dag_id`` that appears while ``until()`` is false (e.g. a dag.test thread
    is alive): ``decide(request) -> option``. Returns the requests answered, with the option chosen."""
    answered: list[dict] = []
    seen: set[tuple] = set()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (until and until()):
        for req in pending_requests(dag_id):
            key = (req["run_id"], req["task_id"], req["map_index"])
            if key in seen:
                continue
            option = decide(req)
            respond(dag_id, req["run_id"], req["task_id"], req["map_index"], option, user)
            seen.add(key)
            answered.append({**req, "option": option})
        time.sleep(0.5)
    return answered
