"""What ``/health`` shows a caller without the API key: the verdict, never the internals.

The full document names hosts, pids, lease owners, Redis and database errors, and
failure records with tracebacks and file paths: a map of the fleet for whoever reads it.
A load balancer or a status page needs only ``status`` and what is wrong in a line each,
so that is the public summary. Problem lines are written for operators and may quote an
exception, so each is cut to its first line and stripped of URLs, addresses, paths and
worker names before it is shown.
"""

from __future__ import annotations

import re
from typing import Any

from tickfleet.chain.price_source import price_source

MAX_LINE_CHARS = 160
_ROUTES = "admin|subscriptions|instruments|health|metrics"
_MASKS = (
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I), "<url>"),
    (re.compile(r"\b[\w.-]+@[\w.-]+"), "<worker>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<address>"),
    (re.compile(r"(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])", re.I), "<address>"),
    (re.compile(r"\b[a-z][\w.-]*:\d{2,5}\b", re.I), "<address>"),
    (re.compile(rf"(?<![\w/.])(?!/(?:{_ROUTES})\b)(?:/[\w.~-]+)+/?"), "<path>"),
    (re.compile(r"\bpid[=: ]\s*\d+", re.I), "pid=<pid>"),
)


def public_line(text: str) -> str:
    """One problem, as anyone may read it: its first line, masked, at most 160 characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    for pattern, mask in _MASKS:
        line = pattern.sub(mask, line)
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"


def public_health(doc: dict[str, Any]) -> dict[str, Any]:
    """The public summary of a health document: status, problems and warnings in a line each."""
    problems = [
        f"{part} unreachable" for part in ("redis", "database") if not doc[part].get("ok", True)
    ]
    problems += [public_line(p) for p in doc.get("problems", [])]
    return {
        "status": doc["status"],
        "problems": problems,
        "warnings": [public_line(w) for w in doc.get("warnings", [])],
        "detail": "the full document needs the API key (X-API-Key)",
    }


def public_status(doc: dict[str, Any]) -> dict[str, Any]:
    """The fleet's state in a chain page's header: the summary plus the breaker's state,
    each expected stream's verdict (``streaming`` or its problem, masked) and where the
    prices come from as the streams report it (``tickfleet.chain.price_source``)."""
    streams = {
        name: "streaming" if not s.get("problem") else public_line(str(s["problem"]))
        for name, s in doc.get("streams", {}).items()
    }
    summary = public_health(doc)
    return {
        "status": summary["status"],
        "problems": summary["problems"],
        "breaker": doc.get("breaker", {}).get("state", "unknown"),
        "streams": streams,
        "source": price_source(doc.get("streams", {})).document(),
    }
