"""The last line of defence: no API response leaves with a 公民身份号码 or a phone number in it.

The release review (保密审查) should already have caught any direct identifier before a release was published;
this guard scans every response body under /api/ once more and, on a hit, sends a 500 ``pii_blocked`` instead
and logs where (path, kind, offset; never the value).

The patterns are the review's own (``pipelines.publish.pii``: 18- and 15-digit 公民身份号码 with a plausible birth
date, mobile and landline numbers, each not touching another digit, checksums skipped), so "what looks like
personal data" is defined in one place; the guard first makes full-width digits and Ｘ half-width, which a
response could carry in free text.
"""

from __future__ import annotations

import json
import logging

from pipelines.publish.pii import scan_text

log = logging.getLogger("pipelines.api.pii")

_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)} | {"\uff38": "X", "\uff58": "x"})


def find(text: str) -> tuple[str, int] | None:
    """The first (kind, character offset) of personal data in ``text``, or None."""
    hits = scan_text(text.translate(_FULLWIDTH))
    if not hits:
        return None
    offset, kind = min((offsets[0], kind) for kind, offsets in hits.items())
    return kind, offset


SCANNED_TYPES = ("application/json", "application/ld+json", "text/", "application/xml", "application/geo+json")


class PiiGuard:
    """ASGI middleware: buffers each response under ``prefix`` and scans it before anything is sent.

    API responses are bounded (a page is at most 1,000 rows), so buffering one is cheap.
    """

    def __init__(self, app, prefix: str = "/api/"):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        chunks: list[bytes] = []

        async def guarded_send(message):
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            headers = dict((k.lower(), v) for k, v in start.get("headers", []))
            ctype = headers.get(b"content-type", b"").decode("latin-1")
            hit = find(body.decode("utf-8", errors="replace")) if ctype.startswith(SCANNED_TYPES) else None
            if hit is None:
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            kind, offset = hit
            log.error("PII guard blocked the response to %s %s (status %s): a %s pattern at character offset %d; "
                      "the published release must be reviewed", scope.get("method"), scope["path"],
                      start.get("status"), kind, offset)
            payload = json.dumps({
                "error": "pii_blocked",
                "detail": "the response contained a pattern of personal data (" + kind + ") and was withheld; "
                          "the incident is logged for the release review",
            }, ensure_ascii=False).encode("utf-8")
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})

        await self.app(scope, receive, guarded_send)
