"""OData V2 conventions shared by the SAP platforms that speak it (Cloud Integration, SAC).

Only pure functions live here: unwrapping the ``{"d": ...}`` envelopes, following ``__next``
links, reading ``/Date(ms)/`` timestamps, writing ``$filter`` literals, and finding the message
of an ``odata.error`` envelope (so :mod:`.errors` shows the server's text). The HTTP clients in
:mod:`.http` and :mod:`.async_http` do the requests; platform hooks combine the two.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_sapplan.exceptions import SapplanError

_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
MAX_PAGES = 10_000
"""Safety net for ``__next`` chains: a server that links a page to itself never loops forever."""


def unwrap(payload: Any) -> Any:
    """The content of an OData V2 answer: the ``d`` object, or the payload itself when unwrapped.

    ``{"d": {"results": [...]}}`` gives the dict holding ``results`` (use :func:`results`);
    ``{"d": {...}}`` gives the entity; anything else (already plain JSON) is returned unchanged.
    """
    if isinstance(payload, Mapping) and "d" in payload and len(payload) == 1:
        return payload["d"]
    return payload


def results(payload: Any) -> list[dict[str, Any]]:
    """The entities of a collection answer (``d.results``, a bare ``d`` list, or a bare list)."""
    body = unwrap(payload)
    if isinstance(body, Mapping):
        items = body.get("results")
        if isinstance(items, list):
            return [dict(item) for item in items if isinstance(item, Mapping)]
        if not body:
            return []
        return [dict(body)]  # a single entity where a collection was expected
    if isinstance(body, list):
        return [dict(item) for item in body if isinstance(item, Mapping)]
    return []


def entity(payload: Any) -> dict[str, Any]:
    """A single entity (``{"d": {...}}``); a one-element collection is accepted too."""
    body = unwrap(payload)
    if isinstance(body, Mapping) and isinstance(body.get("results"), list):
        items = results(body)
        return items[0] if items else {}
    return dict(body) if isinstance(body, Mapping) else {}


def next_link(payload: Any) -> str | None:
    """The ``__next`` link of a collection page, or None on the last page."""
    body = unwrap(payload)
    if isinstance(body, Mapping):
        link = body.get("__next")
        if isinstance(link, str) and link:
            return link
    return None


def total_count(payload: Any) -> int | None:
    """``__count`` of a page fetched with ``$inlinecount=allpages`` (a string in V2), or None."""
    body = unwrap(payload)
    raw = body.get("__count") if isinstance(body, Mapping) else None
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def split_next_link(link: str) -> tuple[str, dict[str, str]]:
    """A ``__next`` link as (path or URL without query, query parameters).

    Servers send absolute URLs or paths relative to the service root; the query (``$skiptoken``,
    and the original ``$filter``) is returned separately so the client can encode it itself.
    """
    parts = urlsplit(link)
    query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    if parts.scheme:
        return f"{parts.scheme}://{parts.netloc}{parts.path}", query
    return parts.path, query


def iterate_pages(
    get: Callable[[str, dict[str, Any] | None], Any], path: str, params: Mapping[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield every entity of a collection, following ``__next`` links page by page.

    :param get: ``get(path_or_url, params)`` returning the parsed JSON of one page (a hook's
        ``client.get_json`` wrapped); it is called once per page, never for all pages at once.
    """
    current: str = path
    query: dict[str, Any] | None = dict(params) if params else None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        payload = get(current, query)
        yield from results(payload)
        link = next_link(payload)
        if link is None or link in seen:
            return
        seen.add(link)
        current, query = split_next_link(link)  # relative links resolve against the service root
    raise SapplanError(f"More than {MAX_PAGES} pages from {path}: the server's __next links loop.")


def parse_date(value: Any) -> datetime | None:
    """``/Date(1522069440003)/`` (optionally with ``+0000`` offset minutes) as an aware UTC datetime.

    ISO-8601 strings (OData V4 style, or ``datetime'...'`` values echoed back) are accepted too;
    anything unparseable gives None.
    """
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip()
    found = _DATE.match(text)
    if found:
        return datetime.fromtimestamp(int(found.group(1)) / 1000.0, tz=timezone.utc)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_date(moment: datetime | float) -> str:
    """The ``/Date(ms)/`` form of a datetime (naive = UTC) or epoch seconds."""
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        epoch = aware.timestamp()
    else:
        epoch = float(moment)
    return f"/Date({round(epoch * 1000)})/"


def datetime_literal(moment: datetime | date | str) -> str:
    """A ``$filter`` literal ``datetime'YYYY-MM-DDTHH:MM:SS'`` in UTC (OData V2 allows no offset).

    Aware datetimes are converted to UTC, naive ones are taken as UTC; strings are parsed as
    ISO-8601 first. Fractions of a second are kept to milliseconds.
    """
    if isinstance(moment, str):
        parsed = parse_date(moment)
        if parsed is None:
            raise ValueError(f"{moment!r} is not an ISO-8601 date-time; pass e.g. '2026-01-31T08:00:00Z'.")
        moment = parsed
    elif not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)
    utc = moment.astimezone(timezone.utc) if moment.tzinfo else moment
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return f"datetime'{text}'"


def string_literal(value: Any) -> str:
    """A quoted ``$filter``/key string literal (single quotes doubled, as OData requires)."""
    return "'" + str(value).replace("'", "''") + "'"


def odata_error_message(payload: Any) -> str | None:
    """The text of an OData error body, or None when ``payload`` is not one.

    Handles V2 ``{"error": {"code", "message": {"lang", "value"}}}``, V4 ``{"error": {"message": "..."}}``
    and the ``innererror.errordetails`` list some SAP services add; the code is appended when present.
    """
    if isinstance(payload, (bytes, str)):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    if not isinstance(payload, Mapping):
        return None
    error = payload.get("error") or payload.get("odata.error")
    if not isinstance(error, Mapping):
        return None
    message = error.get("message")
    text: str | None = None
    if isinstance(message, Mapping):
        value = message.get("value")
        text = str(value) if value not in (None, "") else None
    elif isinstance(message, str) and message:
        text = message
    if text is None:
        inner = error.get("innererror")
        details = inner.get("errordetails") if isinstance(inner, Mapping) else None
        if isinstance(details, list):
            texts = [str(d.get("message")) for d in details if isinstance(d, Mapping) and d.get("message")]
            text = "; ".join(texts) or None
    if text is None:
        return None
    code = error.get("code")
    return f"{text} ({code})" if code not in (None, "") and str(code) not in text else text
