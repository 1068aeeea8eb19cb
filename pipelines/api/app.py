"""The read API: the open-data catalog, the published datasets with paging and filters, and identity verification.

``uvicorn pipelines.api.app:app`` (``make api``); OpenAPI docs at /docs. Everything lives under /api/v1:

  GET  /api/v1/catalog                  the catalog (JSON); ?format=dcat, or /api/v1/catalog.jsonld, for DCAT JSON-LD
  GET  /api/v1/datasets/{code}          metadata, fields and the current release
  GET  /api/v1/datasets/{code}/rows     the current release's rows: page, page_size (<= 1000), filters on fields
  GET  /api/v1/datasets/{code}/releases the release history
  POST /api/v1/verify                   identity verification (核验): {"id_number", "name"} -> {"match": bool}

Access follows each dataset's open attribute: 无条件开放 (unconditional) is public; 有条件开放 (conditional) needs
an API key with scope ``conditional`` in the header X-API-Key; 不予开放 (closed) is never listed nor served (404).
The verification service needs the scope ``verify``. A missing or unknown key is 401, a key without the scope 403.
Every error is JSON: {"error": code, "detail": message}. docs/api.md is the user's guide.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Callable

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipelines.api import datasets as ds_mod
from pipelines.api import keys as keys_mod
from pipelines.api import store
from pipelines.api import verify as verify_mod
from pipelines.api.pii import PiiGuard
from pipelines.departments import LABELS, Department
from pipelines.registry import RegistryError
from pipelines.settings import settings

log = logging.getLogger("pipelines.api")

PREFIX = "/api/v1"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
RESERVED_PARAMS = {"page", "page_size", "release_id"}
CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SCOPE_CONDITIONAL = "conditional"
SCOPE_VERIFY = "verify"


class ApiError(Exception):
    """An error answered as {"error": code, "detail": message} with an HTTP status."""

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable error code")
    detail: str = Field(description="what went wrong, for a person")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody} for s in statuses}


# --- dataset definitions ---------------------------------------------------------------------------------------

_DEFS_TTL_S = 10.0
_defs_cache: tuple[float, list] | None = None


def get_datasets() -> list:
    """Dataset definitions (re-read at most every 10 s); a FastAPI dependency, so tests can override it."""
    global _defs_cache
    now = time.monotonic()
    if _defs_cache and now - _defs_cache[0] < _DEFS_TTL_S:
        return _defs_cache[1]
    try:
        defs = ds_mod.load_datasets()
    except Exception as exc:  # a broken definition file must not take the API down silently
        log.exception("dataset definitions could not be loaded")
        raise ApiError(500, "dataset_definitions_invalid", f"the dataset definitions could not be loaded: {exc}")
    _defs_cache = (now, defs)
    return defs


Datasets = Annotated[list, Depends(get_datasets)]


def _find(defs: list, code: str):
    """The definition of a servable (not closed) dataset, else 404 — a closed dataset is not even named."""
    if not CODE_RE.match(code):  # not echoed: it could be anything
        raise ApiError(404, "dataset_not_found", f"no open dataset with that code; GET {PREFIX}/catalog lists them")
    for d in defs:
        if d.code == code and d.open_attribute != "closed":
            return d
    raise ApiError(404, "dataset_not_found", f"no open dataset with code {code!r}; GET {PREFIX}/catalog lists them")


# --- API keys --------------------------------------------------------------------------------------------------

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="API key of an authorised department (有条件开放 datasets, verification)")
_WWW = {"WWW-Authenticate": 'APIKey header="X-API-Key"'}


def _client(key: str | None) -> keys_mod.Client | None:
    if not key:
        return None
    try:
        store_ = keys_mod.current()
    except RegistryError as exc:
        log.error("API keys file invalid: %s", exc)
        raise ApiError(500, "api_keys_file_invalid", "the API keys file is invalid; the operator has been told")
    client = store_.lookup(key)
    if client is None:
        raise ApiError(401, "invalid_api_key", "the API key in X-API-Key is not valid (unknown or revoked)", _WWW)
    return client


def _require(key: str | None, scope: str, what: str) -> keys_mod.Client:
    client = _client(key)
    if client is None:
        raise ApiError(401, "api_key_required", f"{what} needs an API key with scope {scope!r} in header X-API-Key",
                       _WWW)
    if scope not in client.scopes:
        raise ApiError(403, "scope_required",
                       f"the API key of client {client.client!r} does not have scope {scope!r}, which {what} needs")
    return client


ApiKey = Annotated[str | None, Security(api_key_header)]


# --- views -----------------------------------------------------------------------------------------------------

def _department_name(code: str) -> str | None:
    try:
        return LABELS[Department(code)]
    except ValueError:
        return None


def _links(request: Request, code: str) -> dict[str, str]:
    base = str(request.base_url).rstrip("/") + PREFIX + f"/datasets/{code}"
    return {"self": base, "rows": base + "/rows", "releases": base + "/releases"}


def _dataset_view(request: Request, d, entry: dict | None, release: dict | None) -> dict[str, Any]:
    return {
        "code": d.code,
        "title": d.title,
        "title_en": d.title_en,
        "provider_department": d.provider_department,
        "provider_department_name": _department_name(d.provider_department),
        "abstract": d.abstract,
        "open_attribute": d.open_attribute,
        "open_attribute_zh": ds_mod.OPEN_ATTRIBUTE_ZH.get(d.open_attribute),
        "access": "public" if d.open_attribute == "unconditional" else f"API key with scope {SCOPE_CONDITIONAL!r}",
        "fields": [
            {"name": f.name, "type": f.type, "label_zh": f.label_zh, "description": f.description,
             "filterable": bool(f.filterable)}
            for f in d.fields
        ],
        "catalog_entry": entry,
        "current_release": release,
        "links": _links(request, d.code),
    }


def _catalog(request: Request, defs: list) -> dict[str, Any]:
    with store.snapshot() as conn:
        entries = store.catalog_entries(conn)
        items = [_dataset_view(request, d, entries.get(d.code), store.current_release(conn, d.code))
                 for d in defs if d.open_attribute != "closed"]
    base = str(request.base_url).rstrip("/") + PREFIX
    return {"title": "上海市政府数据资源目录 — 基础数据库开放数据", "title_en": "Shanghai open government data catalog",
            "count": len(items), "datasets": items, "dcat": base + "/catalog.jsonld"}


def _dcat(request: Request, defs: list) -> dict[str, Any]:
    """DCAT JSON-LD: the publication core's catalog.jsonld when it has written one, else built from the catalog."""
    path = settings.publish_dir / "catalog.jsonld"
    if path.is_file():
        import json

        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            log.error("%s is not valid JSON; serving a DCAT catalog built by the API instead", path)
    cat = _catalog(request, defs)
    access = {"unconditional": "PUBLIC", "conditional": "RESTRICTED", "closed": "NON_PUBLIC"}
    return {
        "@context": {"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/",
                     "foaf": "http://xmlns.com/foaf/0.1/"},
        "@id": cat["dcat"],
        "@type": "dcat:Catalog",
        "dct:title": [{"@value": cat["title"], "@language": "zh"}, {"@value": cat["title_en"], "@language": "en"}],
        "dcat:dataset": [
            {
                "@id": item["links"]["self"],
                "@type": "dcat:Dataset",
                "dct:identifier": item["code"],
                "dct:title": [{"@value": item["title"], "@language": "zh"}]
                + ([{"@value": item["title_en"], "@language": "en"}] if item["title_en"] else []),
                "dct:description": item["abstract"],
                "dct:publisher": {"@type": "foaf:Agent", "foaf:name": item["provider_department_name"]
                                  or item["provider_department"]},
                "dct:accessRights": {
                    "@id": "http://publications.europa.eu/resource/authority/access-right/"
                           + access[item["open_attribute"]]},
                "dct:modified": (item["current_release"] or {}).get("published_at"),
                "dcat:distribution": [{"@type": "dcat:Distribution", "dcat:accessURL": {"@id": item["links"]["rows"]},
                                       "dcat:mediaType": "application/json"}],
            }
            for item in cat["datasets"]
        ],
    }


# --- filters ---------------------------------------------------------------------------------------------------

_INT_TYPES = {"smallint", "integer", "bigint"}
_INT_RE = re.compile(r"^[+-]?\d{1,18}$")


def _parse_value(field: str, pg_type: str, raw: str) -> Any:
    """A filter value as the column's type; a 400 naming the field and the expected type otherwise (the value is
    not echoed: it could be anything, personal data included)."""
    def bad(expected: str) -> ApiError:
        return ApiError(400, "invalid_filter_value", f"filter {field!r} expects {expected}")

    if raw == "":
        raise bad("a value (it was empty)")
    base = pg_type.split("(")[0].strip()
    if base in _INT_TYPES:
        if not _INT_RE.match(raw):
            raise bad("an integer")
        return int(raw)
    if base in ("numeric", "real", "double precision"):
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise bad("a number") from None
        if not value.is_finite():
            raise bad("a finite number")
        return value
    if base == "date":
        try:
            if len(raw) != 10:
                raise ValueError(raw)
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise bad("a date YYYY-MM-DD") from None
    if base == "boolean":
        low = raw.lower()
        if low in ("true", "1", "t", "yes"):
            return True
        if low in ("false", "0", "f", "no"):
            return False
        raise bad("true or false")
    if base.startswith("timestamp"):
        try:
            return dt.datetime.fromisoformat(raw)
        except ValueError:
            raise bad("an ISO 8601 date-time") from None
    if len(raw) > 256:
        raise bad("a text of at most 256 characters")
    return raw


def _filters(request: Request, d, columns: dict[str, str]) -> dict[str, list[Any]]:
    names = [f.name for f in d.fields]
    allowed = [f.name for f in d.fields if f.filterable]
    out: dict[str, list[Any]] = {}
    for key, raw in request.query_params.multi_items():
        if key in RESERVED_PARAMS:
            continue
        if key not in allowed:
            why = "is not filterable" if key in names else "is not a field of this dataset"
            what = repr(key) if CODE_RE.match(key) else "a parameter"  # echoed only when it looks like a name
            raise ApiError(400, "unknown_filter",
                           f"{what} {why}; filterable fields of {d.code}: {', '.join(allowed) or 'none'}"
                           f" (other parameters: {', '.join(sorted(RESERVED_PARAMS))})")
        out.setdefault(key, []).append(_parse_value(key, columns[key], raw))
    return out


# --- app -------------------------------------------------------------------------------------------------------

router = APIRouter(prefix=PREFIX)


@router.get("", tags=["catalog"], summary="Where to start: links to the catalog and the docs")
def index(request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {"catalog": base + PREFIX + "/catalog", "dcat": base + PREFIX + "/catalog.jsonld",
            "docs": base + "/docs", "openapi": base + "/openapi.json"}


@router.get("/health", tags=["catalog"], summary="Liveness and database reachability",
            responses=_errors(503))
def health() -> dict[str, str]:
    try:
        store.ping()
    except Exception as exc:
        log.error("health: warehouse unreachable: %s", exc)
        raise ApiError(503, "warehouse_unavailable", "the warehouse cannot be reached")
    return {"status": "ok"}


@router.get("/catalog", tags=["catalog"], summary="The open-data catalog (JSON, or DCAT JSON-LD with ?format=dcat)",
            responses={200: {"content": {"application/ld+json": {}}}, **_errors(422)})
def catalog(request: Request, defs: Datasets,
            format: Annotated[str, Query(pattern="^(json|dcat|jsonld)$",
                                         description="json (default) or dcat / jsonld for DCAT JSON-LD")] = "json"):
    if format in ("dcat", "jsonld"):
        return JSONResponse(_dcat(request, defs), media_type="application/ld+json")
    return _catalog(request, defs)


@router.get("/catalog.jsonld", tags=["catalog"], summary="The catalog as DCAT JSON-LD (for CKAN-style harvesters)",
            responses={200: {"content": {"application/ld+json": {}}}})
def catalog_jsonld(request: Request, defs: Datasets):
    return JSONResponse(_dcat(request, defs), media_type="application/ld+json")


CodePath = Annotated[str, Path(description="dataset code, as listed in the catalog")]


@router.get("/datasets/{code}", tags=["datasets"], summary="A dataset's metadata, fields and current release",
            responses=_errors(404))
def dataset(request: Request, code: CodePath, defs: Datasets) -> dict[str, Any]:
    d = _find(defs, code)
    with store.snapshot() as conn:
        entry = store.catalog_entries(conn).get(code)
        release = store.current_release(conn, code)
    return _dataset_view(request, d, entry, release)


@router.get("/datasets/{code}/releases", tags=["datasets"], responses=_errors(404),
            summary="A dataset's published releases, newest first, and its changelog")
def dataset_releases(code: CodePath, defs: Datasets) -> dict[str, Any]:
    d = _find(defs, code)
    with store.snapshot() as conn:
        current = store.current_release(conn, code)
        history = store.releases(conn, code)
        events = store.changelog(conn, code)
    return {"dataset": d.code, "current_release_id": (current or {}).get("release_id"), "releases": history,
            "changelog": events}


@router.get(
    "/datasets/{code}/rows", tags=["datasets"],
    summary="Rows of the current release, paged, filtered on the dataset's filterable fields",
    description=(
        "Filters are query parameters named after the dataset's filterable fields (see its metadata), e.g. "
        "`?district_code=310101&sex=1`; a field given twice matches either value. Rows are ordered by the "
        "dataset's fields in their declared order (dimensions first), a total order, so consecutive pages never "
        "lose or repeat a row. `next`/`previous` links carry `release_id`: if a new release replaces the current "
        "one while you page, the next page answers 409 `release_changed` instead of mixing two releases. "
        "有条件开放 datasets need an API key with scope `conditional`."),
    responses=_errors(400, 401, 403, 404, 409, 422),
)
def dataset_rows(
    request: Request, code: CodePath, defs: Datasets, key: ApiKey,
    page: Annotated[int, Query(ge=1, le=10_000_000, description="page number, from 1")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"rows per page, 1 to {MAX_PAGE_SIZE}")]
    = DEFAULT_PAGE_SIZE,
    release_id: Annotated[str | None, Query(max_length=200,
                                            description="the release paging started on (from `next`)")] = None,
):
    d = _find(defs, code)
    client = None
    if d.open_attribute == "conditional":
        client = _require(key, SCOPE_CONDITIONAL, f"dataset {code!r} (有条件开放)")
    else:
        _client(key)  # a key that is sent must be valid, even where none is needed
    fields = [f.name for f in d.fields]
    with store.snapshot() as conn:
        columns = store.table_columns(conn, code)
        if not columns:
            raise ApiError(404, "not_published", f"dataset {code!r} has no published release yet")
        missing = [f for f in fields if f not in columns]
        if missing:
            log.error("publish.%s lacks the defined fields %s", code, missing)
            raise ApiError(500, "release_schema_mismatch",
                           f"the published table of {code!r} does not match its definition; the operator is told")
        filters = _filters(request, d, columns)
        current = store.current_release(conn, code)
        current_id = None if current is None else current.get("release_id")
        if release_id is not None and str(current_id) != release_id:
            raise ApiError(409, "release_changed",
                           f"dataset {code!r} was re-released since paging started (release {release_id} -> "
                           f"{current_id}); start again from page 1")
        total, rows = store.page(conn, code, fields, filters, page, page_size)
    pages = math.ceil(total / page_size) if total else 0
    pin = {"release_id": str(current_id)} if current_id is not None else {}
    nxt = str(request.url.include_query_params(page=page + 1, **pin)) if page < pages else None
    prev = str(request.url.include_query_params(page=min(page - 1, max(pages, 1)), **pin)) if page > 1 else None
    body = {"dataset": code, "release_id": current_id, "page": page, "page_size": page_size, "total": total,
            "pages": pages, "filters": {k: [str(v) for v in vs] for k, vs in filters.items()}, "fields": fields,
            "rows": rows, "next": nxt, "previous": prev}
    headers = {"Cache-Control": "private, no-store"} if client else {}
    if client:
        log.info("conditional read: client %s (%s) dataset %s page %d", client.client, client.department, code, page)
    return JSONResponse(body, headers=headers)


class RateLimiter:
    """At most ``per_minute`` calls per client in any sliding minute (in-process; one api worker per limit).

    Verification answers one bit, but a client allowed unlimited calls could still probe numbers by the
    thousand; the quota bounds that, and every call is audited besides."""

    def __init__(self, per_minute: int):
        import threading
        from collections import deque

        self.per_minute = per_minute
        self._calls: dict[str, deque] = {}
        self._deque = deque
        self._lock = threading.Lock()

    def check(self, client: str, now: float | None = None) -> None:
        import time

        now = time.monotonic() if now is None else now
        with self._lock:
            calls = self._calls.setdefault(client, self._deque())
            while calls and now - calls[0] >= 60.0:
                calls.popleft()
            if len(calls) >= self.per_minute:
                retry = max(1, int(60.0 - (now - calls[0])) + 1)
                raise ApiError(429, "rate_limited",
                               f"at most {self.per_minute} verifications a minute per client; retry in {retry} s")
            calls.append(now)


verify_limiter = RateLimiter(settings.verify_rate_per_minute)


def _verify_client(key: ApiKey) -> keys_mod.Client:
    """A dependency, so the key is checked before the body: no key is 401 whatever the body."""
    client = _require(key, SCOPE_VERIFY, "identity verification")
    verify_limiter.check(client.client)
    return client


class VerifyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id_number": "18 characters (or a 15-digit legacy number)", "name": "张三"}]},
    )
    id_number: str = Field(min_length=1, max_length=40,
                           description="公民身份号码: 18 characters or a 15-digit legacy number; spaces, full-width "
                                       "characters and a lower-case x are normalised")
    name: str = Field(min_length=1, max_length=100, description="姓名, compared as the warehouse normalises names")

    @field_validator("name", "id_number")
    @classmethod
    def not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class VerifyResponse(BaseModel):
    match: bool = Field(description="true when the number and the name belong to one living resident")


@router.post(
    "/verify", tags=["verification"], response_model=VerifyResponse,
    summary="Identity verification (核验): do this 公民身份号码 and name belong to a living resident?",
    description=(
        "For authorised departments (API key with scope `verify`). Answers only `match` true or false — never the "
        "record; 'no such number' and 'wrong name' answer the same. Every call is audited (client, time, a salted "
        "hash of the number, the outcome). An invalid number is 422 with its reason."),
    responses=_errors(401, 403, 422, 429),
)
def verify(request: Request, body: VerifyRequest, client: Annotated[keys_mod.Client, Depends(_verify_client)]):
    salt = keys_mod.current().audit_salt
    caller = verify_mod.Caller(client.client, client.department, request.client.host if request.client else None)
    try:
        match = verify_mod.verify(body.id_number, body.name, caller, salt)
    except verify_mod.InvalidIdNumber as exc:
        raise ApiError(422, "invalid_id_number", str(exc))
    return JSONResponse({"match": match}, headers={"Cache-Control": "no-store"})


def _loc(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("query", "body", "path", "header")]
    return ".".join(parts) or "request"


def create_app(datasets_loader: Callable[[], list] | None = None) -> FastAPI:
    """The application; ``datasets_loader`` replaces the dataset definitions (tests)."""
    application = FastAPI(
        title="上海市基础数据库 开放数据接口 (read API)",
        version="1",
        description=(
            "Open data of Shanghai's foundational databases (实有人口库 first): the catalog, the published datasets "
            "with paging and filters, and the identity verification service for authorised departments. "
            "无条件开放 datasets are public; 有条件开放 ones and verification need an API key (header X-API-Key). "
            "Errors are JSON {\"error\", \"detail\"}."),
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    application.include_router(router)
    if datasets_loader is not None:
        application.dependency_overrides[get_datasets] = datasets_loader

    @application.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError):
        return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @application.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        # the messages only, never the input (it may be an ID number)
        detail = "; ".join(f"{_loc(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors())
        return JSONResponse({"error": "invalid_parameter", "detail": detail}, status_code=422)

    @application.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @application.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal_error", "detail": "an internal error occurred; it is logged"},
                            status_code=500)

    application.add_middleware(PiiGuard, prefix=PREFIX)
    return application


app = create_app()
