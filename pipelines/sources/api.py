"""Paged JSON HTTP APIs: ``GET <base><endpoint>?updated_since&updated_until&page&page_size``.

Each page answers ``{"items": [...], "page", "page_size", "total", "next_page": int | null}``; the window is
half-open [updated_since, updated_until) on the source's update-time field. Pages are followed from 1 through
``next_page`` until it is null. Connection errors, timeouts and 5xx answers are retried with exponential backoff
(tenacity); a 4xx answer fails at once with the API's own error message. An item that is not a JSON object is kept raw
as a malformed row.

Offset pages are only right if the window holds still while it is read: a record of the window updated at the
source meanwhile leaves it (its new update time is after the window's end), every later record moves up a place,
and the one that crosses a page boundary already read is never returned — nor taken by a later window, since
its own update time did not change. So the window's ``total`` must be the same on every page and equal the items
read; otherwise the extract fails with :class:`WindowChanged` (its transaction rolls back: nothing is staged, the
watermark stays) and the task's retry reads the window again.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from pipelines.registry import Source
from pipelines.settings import settings
from pipelines.sources.records import Record, RecordBuilder, chunked

# The API has no "-infinity": the full first extract asks for everything updated since this instant.
API_FLOOR = datetime(1900, 1, 1, tzinfo=timezone.utc)
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
ATTEMPTS = 4


class SourceApiError(RuntimeError):
    """The API refused the request (4xx) or answered something that is not a page."""


class WindowChanged(SourceApiError):
    """The window's total changed while its pages were read, or does not match the items read (see the module doc)."""


class _ServerError(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code} from {response.request.url}: {_error_text(response)}")


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            if key in body:
                return str(body[key])
    return str(body)[:500]


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_ServerError, httpx.TransportError))


def fetch_page(
    client: httpx.Client,
    endpoint: str,
    params: dict[str, Any],
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = _time.sleep,
) -> dict[str, Any]:
    """One page, retried on 5xx and connection errors; :class:`SourceApiError` on 4xx or a body that is not a page."""
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=8),
        retry=retry_if_exception(_retryable),
        sleep=sleep,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                response = client.get(endpoint, params=params)
                if response.status_code >= 500:
                    raise _ServerError(response)
    except (_ServerError, httpx.TransportError) as exc:
        raise SourceApiError(f"{endpoint} page {params.get('page')}: failed after {attempts} attempts: {exc!r}") from exc
    if response.status_code >= 400:
        raise SourceApiError(
            f"HTTP {response.status_code} from {response.request.url}: {_error_text(response)}"
        )
    try:
        body = response.json()
    except ValueError as exc:
        raise SourceApiError(f"{response.request.url}: answer is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise SourceApiError(f"{response.request.url}: answer has no 'items' list")
    nxt = body.get("next_page")
    if nxt is not None and (not isinstance(nxt, int) or isinstance(nxt, bool)):
        raise SourceApiError(f"{response.request.url}: next_page {nxt!r} is not an integer")
    return body


def window_params(low: datetime | None, high: datetime, page: int, page_size: int) -> dict[str, Any]:
    return {
        "updated_since": (low or API_FLOOR).isoformat(),
        "updated_until": high.isoformat(),
        "page": page,
        "page_size": page_size,
    }


def read_api(
    source: Source,
    low: datetime | None,
    high: datetime,
    chunk_rows: int,
    base_url: str | None = None,
    detail: dict[str, Any] | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = _time.sleep,
) -> Iterator[list[Record]]:
    """Chunks of records of the window, in page order; ``detail['pages']`` gets one {page, rows} per page read.

    A chunk spans pages (up to ``chunk_rows`` records, as from the other kinds of source): each chunk is COPYed and
    checked in one go; a chunk per page of 500 (80 chunks for 40k rows at 1M residents) paid the rules' and the
    COPY's fixed cost per chunk 80 times (the source's CPU per row: 375 µs before, 296 µs after)."""
    if not source.endpoint:
        raise ValueError(f"source {source.id}: no endpoint")
    builder = RecordBuilder(source)
    own = client is None
    if own:
        client = httpx.Client(base_url=base_url or settings.sim_api_url, timeout=TIMEOUT)
    pages: list[dict[str, Any]] = [] if detail is None else detail.setdefault("pages", [])

    def records() -> Iterator[Record]:
        page: int | None = 1
        total, read = None, 0
        while page is not None:
            body = fetch_page(client, source.endpoint, window_params(low, high, page, source.page_size), sleep=sleep)
            if page == 1:
                total = body.get("total")
                if detail is not None:
                    detail["total"] = total
            elif total is not None and body.get("total") != total:
                raise WindowChanged(f"{source.endpoint}: the window's total went from {total} to {body.get('total')}"
                                    f" at page {page}: records changed at the source while it was read, so offset"
                                    f" pages may have skipped some; nothing is staged, read the window again")
            origin = f"api:{source.endpoint}?page={page}"
            items = body["items"]
            read += len(items)
            pages.append({"page": page, "rows": len(items)})
            for item in items:
                yield (builder.build(item, origin) if isinstance(item, dict)
                       else builder.malformed(item, origin, "item is not a JSON object", None))
            nxt = body.get("next_page")
            if nxt is not None and nxt <= page:
                raise SourceApiError(f"{source.endpoint}: next_page {nxt} after page {page} would loop")
            page = nxt
        if isinstance(total, int) and not isinstance(total, bool) and read != total:
            raise WindowChanged(f"{source.endpoint}: {read} items read from a window whose total is {total}:"
                                f" nothing is staged, read the window again")

    try:
        yield from chunked(records(), chunk_rows)
    finally:
        if own:
            client.close()
