"""API keys of the authorised departments (有条件开放 / 共享), kept as hashes in a YAML file.

The file (``settings.api_keys_file``) is validated at load, so a typo fails with the file and line::

    audit_salt: 9f1c…            # 64 hex characters: the key of the HMAC that hashes ID numbers in the audit log
    clients:
      - client: psb-household     # unique name, shown in the audit log
        department: psb           # the department the client acts for
        key_sha256: 5e88…         # sha256 of the key (hex); the key itself is never stored
        scopes: [verify, conditional]
        created_at: '2026-11-22T15:30:00+08:00'

Scopes: ``conditional`` reads 有条件开放 datasets, ``verify`` calls the identity verification service.
Keys are 256-bit random tokens, so one unsalted sha256 is enough to store them (no dictionary to attack).

CLI::

    python -m pipelines.api.keys add --client NAME --department psb --scopes verify,conditional   # prints the key once
    python -m pipelines.api.keys list
    python -m pipelines.api.keys revoke --client NAME
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from pipelines.registry import RegistryError, _validate
from pipelines.settings import settings

SCOPES = ("conditional", "verify")
KEY_PREFIX = "sk_"

KEYS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["audit_salt", "clients"],
    "additionalProperties": False,
    "properties": {
        "audit_salt": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "clients": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["client", "department", "key_sha256", "scopes"],
                "additionalProperties": False,
                "properties": {
                    "client": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
                    # consuming departments are not all data owners (pipelines.departments lists the owners)
                    "department": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$"},
                    "key_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "scopes": {"type": "array", "items": {"enum": list(SCOPES)}, "uniqueItems": True},
                    "created_at": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Client:
    client: str
    department: str
    key_sha256: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class KeyStore:
    audit_salt: bytes
    clients: tuple[Client, ...]

    def lookup(self, key: str) -> Client | None:
        digest = hash_key(key)
        for c in self.clients:
            if secrets.compare_digest(c.key_sha256, digest):
                return c
        return None


EMPTY = KeyStore(audit_salt=b"", clients=())


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load(path: Path | None = None) -> KeyStore:
    """The key store in ``path``; an absent file is an empty store (no client can authenticate)."""
    path = path or settings.api_keys_file
    if not path.is_file():
        return EMPTY
    data = _validate(path, KEYS_SCHEMA)
    seen: set[str] = set()
    clients = []
    for entry in data["clients"]:
        if entry["client"] in seen:
            raise RegistryError(f"{path}: client {entry['client']!r} appears twice")
        seen.add(entry["client"])
        clients.append(Client(entry["client"], entry["department"], entry["key_sha256"], frozenset(entry["scopes"])))
    return KeyStore(audit_salt=bytes.fromhex(data["audit_salt"]), clients=tuple(clients))


_cache: dict[Path, tuple[tuple[int, int], KeyStore]] = {}
_lock = threading.Lock()


def current(path: Path | None = None) -> KeyStore:
    """The key store, re-read when the file changes (keys added or revoked take effect without a restart)."""
    path = path or settings.api_keys_file
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        return EMPTY
    with _lock:
        hit = _cache.get(path)
        if hit and hit[0] == stamp:
            return hit[1]
        store = load(path)
        _cache[path] = (stamp, store)
        return store


def _read_raw(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"audit_salt": secrets.token_hex(32), "clients": []}
    load(path)  # validate before changing anything
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _write_raw(path: Path, data: dict[str, Any]) -> None:
    """Atomically (temp file + rename), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# API keys of the read API (pipelines/api/keys.py): hashes only, never a key in clear.\n"
            + yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".api_keys.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add(client: str, department: str, scopes: list[str], path: Path | None = None) -> str:
    """Create a key for a new client, store its hash, return the key (the only time it exists in clear)."""
    path = path or settings.api_keys_file
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
    data = _read_raw(path)
    if any(c["client"] == client for c in data["clients"]):
        raise ValueError(f"client {client!r} already has a key in {path}; revoke it first")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    data["clients"].append({
        "client": client,
        "department": department,
        "key_sha256": hash_key(key),
        "scopes": list(dict.fromkeys(scopes)),
        "created_at": datetime.now(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds"),
    })
    _validate_data(path, data)
    _write_raw(path, data)
    return key


def revoke(client: str, path: Path | None = None) -> bool:
    path = path or settings.api_keys_file
    if not path.is_file():
        return False
    data = _read_raw(path)
    kept = [c for c in data["clients"] if c["client"] != client]
    if len(kept) == len(data["clients"]):
        return False
    data["clients"] = kept
    _write_raw(path, data)
    return True


def _validate_data(path: Path, data: dict[str, Any]) -> None:
    import jsonschema

    errors = list(jsonschema.Draft202012Validator(KEYS_SCHEMA).iter_errors(data))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        raise ValueError(f"{where}: {err.message}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.api.keys", description="API keys of the read API")
    p.add_argument("--file", type=Path, default=None, help=f"keys file (default: API_KEYS_FILE, {settings.api_keys_file})")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("add", help="create a key for a client; prints the key once")
    a.add_argument("--client", required=True)
    a.add_argument("--department", required=True, help="department code, e.g. psb")
    a.add_argument("--scopes", required=True, help=f"comma-separated: {','.join(SCOPES)}")
    sub.add_parser("list", help="clients, departments and scopes (no keys, no hashes)")
    r = sub.add_parser("revoke", help="delete a client's key")
    r.add_argument("--client", required=True)
    args = p.parse_args(argv)
    path = args.file or settings.api_keys_file
    try:
        if args.command == "add":
            scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
            key = add(args.client, args.department, scopes, path)
            print(key)
            print(f"stored the hash for client {args.client!r} ({args.department}; scopes {', '.join(scopes)}) in "
                  f"{path}. The key is shown this once: give it to the client; send it as header X-API-Key.",
                  file=sys.stderr)
        elif args.command == "list":
            for c in load(path).clients:
                print(f"{c.client}\t{c.department}\t{','.join(sorted(c.scopes))}")
        elif args.command == "revoke":
            if not revoke(args.client, path):
                print(f"no client {args.client!r} in {path}", file=sys.stderr)
                return 1
            print(f"revoked {args.client!r}", file=sys.stderr)
    except (ValueError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
