"""The last line of defence: no API response leaves with a 公民身份号码 or a phone number in it.

The release review (保密审查) should already have caught any direct identifier before a release was published;
this guard scans every response body under /api/v1 once more and, on a hit, sends a 500 ``pii_blocked`` instead
and logs where (path, kind, offset; never the value).

Patterns (on the body with full-width digits made half-width), each bounded by a character that is not an ASCII
letter or digit, so a digit run inside a checksum or a token does not count:
  - 18-character 公民身份号码: a division [1-9]ddddd, a birth date 18xx-20xx with a real month and day number,
    three digits and a digit or X (the check character is not checked: a mistyped number is still personal data);
  - 15-digit legacy number: division, yymmdd, three digits;
  - mobile numbers 1[3-9] + 9 digits, optionally +86 / 86 in front; landlines 0dd(d)-ddddddd(d) or (0dd)….
"""

from __future__ import annotations

import json
import logging
import re

log = logging.getLogger("pipelines.api.pii")

_B = r"(?<![0-9A-Za-z])"  # not preceded by an ASCII letter or digit
_E = r"(?![0-9A-Za-z])"
_MD = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
PATTERNS: dict[str, re.Pattern[str]] = {
    "id_number": re.compile(_B + r"[1-9]\d{5}(?:18|19|20)\d{2}" + _MD + r"\d{3}[\dXx]" + _E),
    "id_number_15": re.compile(_B + r"[1-9]\d{5}\d{2}" + _MD + r"\d{3}" + _E),
    "mobile_phone": re.compile(_B + r"(?:\+?86[- ]?)?1[3-9]\d{9}" + _E),
    "landline_phone": re.compile(_B + r"(?:0\d{2,3}-|\(0\d{2,3}\) ?)\d{7,8}" + _E),
}
_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)} | {"\uff38": "X", "\uff58": "x"})


def find(text: str) -> tuple[str, int] | None:
    """The first (kind, offset) of personal data in ``text``, or None."""
    text = text.translate(_FULLWIDTH)
    hits = [(m.start(), kind) for kind, p in PATTERNS.items() if (m := p.search(text))]
    if not hits:
        return None
    offset, kind = min(hits)
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
            log.error("PII guard blocked the response to %s %s (status %s): a %s pattern at byte offset %d; "
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
