"""The simulated departments' paged JSON HTTP API (stdlib ``http.server``, no extra dependency).

It serves what ``pipelines.simulate`` wrote under the API directory: ``<dir>/<endpoint>/<YYYY-MM-DD>.jsonl``, one
JSON record per line, every file of the endpoint together (records appear as days are written).

``GET <endpoint>?updated_since=<ISO>&updated_until=<ISO>&page=<n>&page_size=<k>``

* Window: **half-open [updated_since, updated_until)** on the record's update-time field (``updatedAt`` for
  /health/vital-events, from the source registry): a record updated exactly at ``updated_since`` is included, one
  updated exactly at ``updated_until`` is not, so consecutive windows neither miss nor repeat a record. Both are
  optional (an open end). They must be ISO 8601 date-times with a UTC offset (``2026-01-02T00:00:00+08:00``,
  ``…Z``); a '+' that arrives as a space (an unencoded query string) is taken as '+'. Instants are compared, so
  any offset works.
* Order: by update time (as an instant), then the record key (``eventId``), then file order.
* Paging: ``page`` from 1 (default 1), ``page_size`` 1..10000 (default: the registry's, else 500).
* Answer: ``{"items": [...], "page": n, "page_size": k, "total": T, "next_page": n+1 or null}``; ``total`` is the
  number of records in the window; a page past the end has no items and ``next_page`` null.
* Errors: 400 ``{"error": "..."}`` for an unknown or repeated parameter or a bad value (not an integer, out of
  range, a date-time without offset, since after until); 404 ``{"error": "..."}`` for an unknown endpoint;
  405 for other methods.

Use: ``serve(port, directory)`` returns a ``ThreadingHTTPServer`` bound to 127.0.0.1 (``serve_forever()`` it in a
thread); ``start_in_thread(url_or_port, directory)`` starts one and returns a ``stop()`` callable (with ``.port`` and
``.url`` attributes); ``python -m pipelines.simulate.api --port P --dir D`` runs one in the foreground.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

MAX_PAGE_SIZE = 10000
DEFAULT_PAGE_SIZE = 500
PARAMS = ("updated_since", "updated_until", "page", "page_size")
_SPACE_FOR_PLUS = re.compile(r" (\d{2}(?::?\d{2})?)$")


class BadRequest(ValueError):
    pass


def _registry_endpoints() -> dict[str, tuple[str, str, int]]:
    """endpoint -> (update-time field, key field, page size) of the registry's API sources."""
    try:
        from pipelines.registry import load_sources

        return {s.endpoint: (s.updated_at, s.key, s.page_size) for s in load_sources() if s.kind == "api" and s.endpoint}
    except Exception:  # the server still serves directories without a readable registry
        return {}


def parse_instant(name: str, value: str) -> datetime:
    text = _SPACE_FOR_PLUS.sub(r"+\1", value.strip())
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: {value!r} is not an ISO 8601 date-time") from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise BadRequest(f"{name}: {value!r} has no UTC offset (write e.g. 2026-01-02T00:00:00+08:00)")
    return dt


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{name}: {value!r} is not an integer") from None
    if not low <= n <= high:
        raise BadRequest(f"{name}: {n} is not within {low}..{high}")
    return n


class Store:
    """The records of each endpoint, sorted, reloaded when its files change: a file's records are parsed again only
    when that file changed (a new day's file does not make every earlier day's be read again), and a window is found
    by bisection on the sorted update times, as a department's server answers from an index on its update-time
    column. (Parsing every file again for each new one cost the benchmark's 4M increment, whose department API
    holds four times the records of the 1M one, about 0.3 s more of its extract, in the benchmark's own process:
    the department's work, not the pipeline's.)"""

    def __init__(self, directory: Path):
        self.directory = Path(directory).resolve()
        self.endpoints = _registry_endpoints()
        self._cache: dict[str, tuple[tuple, list, list]] = {}
        self._files: dict[Path, tuple[tuple, list]] = {}
        self._lock = threading.Lock()

    def _dir(self, endpoint: str) -> Path | None:
        rel = endpoint.strip("/")
        if not rel or ".." in rel.split("/"):
            return None
        path = (self.directory / rel).resolve()
        if self.directory not in path.parents:
            return None
        return path

    def known(self, endpoint: str) -> bool:
        path = self._dir(endpoint)
        return endpoint in self.endpoints or (path is not None and path.is_dir() and any(path.glob("*.jsonl")))

    def fields(self, endpoint: str) -> tuple[str, str, int]:
        return self.endpoints.get(endpoint, ("updatedAt", "eventId", DEFAULT_PAGE_SIZE))

    def _file_records(self, f: Path, stamp: tuple, upd: str, key: str) -> list[tuple[datetime, str, dict]]:
        """One file's records (update time, key, record), in file order; parsed again only when the file changed."""
        with self._lock:
            cached = self._files.get(f)
            if cached and cached[0] == stamp:
                return cached[1]
        rows = []
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                item = json.loads(line)
                try:
                    when = datetime.fromisoformat(str(item[upd]))
                except (KeyError, TypeError, ValueError):
                    continue  # no update time: cannot be placed in any window
                rows.append((when, str(item.get(key) or ""), item))
        with self._lock:
            self._files[f] = (stamp, rows)
        return rows

    def _sorted(self, endpoint: str) -> tuple[list[tuple[datetime, str, int, dict]], list[datetime]]:
        """The endpoint's records in the answer's order, and their update times (for bisection)."""
        path = self._dir(endpoint)
        files = sorted(path.glob("*.jsonl")) if path is not None and path.is_dir() else []
        stamps = [(f.stat().st_mtime_ns, f.stat().st_size) for f in files]
        signature = tuple((f.name, *stamp) for f, stamp in zip(files, stamps))
        with self._lock:
            cached = self._cache.get(endpoint)
            if cached and cached[0] == signature:
                return cached[1], cached[2]
        upd, key, _ = self.fields(endpoint)
        present = set(files)
        rows = []
        for f, stamp in zip(files, stamps):
            for when, k, item in self._file_records(f, stamp, upd, key):
                rows.append((when, k, len(rows), item))
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        times = [r[0] for r in rows]
        with self._lock:
            self._cache[endpoint] = (signature, rows, times)
            for gone in [f for f in self._files if f.parent == path and f not in present]:
                del self._files[gone]  # (a file removed since: its records go with it)
        return rows, times

    def page(self, endpoint: str, query: str) -> dict:
        params = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise BadRequest(f"unknown parameter(s): {', '.join(unknown)} (allowed: {', '.join(PARAMS)})")
        repeated = sorted(k for k, v in params.items() if len(v) > 1)
        if repeated:
            raise BadRequest(f"parameter(s) given more than once: {', '.join(repeated)}")
        one = {k: v[0] for k, v in params.items()}
        since = parse_instant("updated_since", one["updated_since"]) if "updated_since" in one else None
        until = parse_instant("updated_until", one["updated_until"]) if "updated_until" in one else None
        if since is not None and until is not None and since > until:
            raise BadRequest("updated_since is after updated_until")
        page = _int("page", one["page"], 1, 10**9) if "page" in one else 1
        default_size = self.fields(endpoint)[2]
        size = _int("page_size", one["page_size"], 1, MAX_PAGE_SIZE) if "page_size" in one else default_size
        rows, times = self._sorted(endpoint)
        first = 0 if since is None else bisect.bisect_left(times, since)
        end = len(rows) if until is None else max(first, bisect.bisect_left(times, until))
        lo = first + (page - 1) * size
        items = [r[3] for r in rows[lo:min(lo + size, end)]]
        more = lo + size < end
        return {"items": items, "page": page, "page_size": size, "total": end - first,
                "next_page": page + 1 if more else None}


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        store = self.server.store
        if not store.known(url.path):
            self._send(404, {"error": f"unknown endpoint {url.path}"})
            return
        try:
            self._send(200, store.page(url.path, url.query))
        except BadRequest as exc:
            self._send(400, {"error": str(exc)})

    def _not_allowed(self) -> None:
        self._send(405, {"error": f"method {self.command} not allowed"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed

    def log_message(self, format: str, *args) -> None:  # quiet: tests and the demo run it in-process
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    store: Store


def serve(port: int, directory: Path, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server for ``directory`` bound to ``host:port`` (0 = a free port); call ``serve_forever()`` on it."""
    server = _Server((host, port), _Handler)
    server.store = Store(directory)
    return server


def _host_port(url_or_port: str | int) -> tuple[str, int]:
    if isinstance(url_or_port, int):
        return "127.0.0.1", url_or_port
    text = str(url_or_port)
    if text.isdigit():
        return "127.0.0.1", int(text)
    parts = urlsplit(text if "//" in text else f"http://{text}")
    return parts.hostname or "127.0.0.1", parts.port or 80


def start_in_thread(url_or_port: str | int, directory: Path) -> Callable[[], None]:
    """Serve ``directory`` from a daemon thread; returns ``stop()`` (idempotent) with ``.port`` and ``.url``."""
    host, port = _host_port(url_or_port)
    server = serve(port, directory, host)
    thread = threading.Thread(target=server.serve_forever, name="sim-api", daemon=True)
    thread.start()
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    stop.port = server.server_address[1]  # type: ignore[attr-defined]
    stop.url = f"http://{host}:{stop.port}"  # type: ignore[attr-defined]
    return stop


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.simulate.api", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", type=Path, required=True, help="the API directory the simulator wrote")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    server = serve(args.port, args.dir, args.host)
    print(f"serving {args.dir} at http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
