"""Turning a platform's HTTP answer into one of the provider's exceptions, with a useful message."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_sapplan.core.odata import odata_error_message
from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResourceBusyError,
    SapplanError,
    ServiceUnavailableError,
)

GENERIC_HINTS: dict[int, str] = {
    400: "The platform rejected the request; check the ids and parameters passed to the task.",
    401: "The credentials were rejected or the token expired; check the connection's login and secret.",
    403: "The user or client lacks a role or permission for this call; ask the tenant admin to grant it.",
    404: "The object does not exist or this user cannot see it; check the id or name and its workspace.",
    409: "The target is busy with other work; it was retried and stayed busy.",
    413: "The request body is too large for the platform.",
    423: "The target is locked; it was retried and stayed locked.",
    429: "The platform's rate limit was hit and stayed hit through every retry; poll less often.",
}

_MESSAGE_KEYS = ("statusMessage", "message", "error_description", "error", "msg", "detail")


def server_message(body: bytes | str | None, limit: int = 300) -> str:
    """The human part of an error body (JSON message field, or the start of the text)."""
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        payload: Any = json.loads(text)
    except ValueError:
        payload = None
    found = (odata_error_message(payload) or _find_message(payload)) if payload is not None else None
    if found is None:
        if looks_like_html(text):
            return "(an HTML page)"
        found = " ".join(text.split())
    return found if len(found) <= limit else found[: limit - 1] + "…"


def _find_message(payload: Any) -> str | None:
    if isinstance(payload, dict):
        for key in _MESSAGE_KEYS:
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                nested = _find_message(value)
                if nested:
                    return nested
        status = payload.get("status")
        if isinstance(status, dict):
            return _find_message(status)
    return None


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith("<!doctype html") or head.startswith("<html") or "<html" in head


def is_html_response(headers: Mapping[str, str], body_start: bytes | str) -> bool:
    """True when a response that should be JSON (or data) is really an HTML page."""
    content_type = ""
    for key, value in headers.items():
        if key.lower() == "content-type":
            content_type = value.lower()
    if "text/html" in content_type:
        return True
    text = body_start.decode("utf-8", "replace") if isinstance(body_start, bytes) else body_start
    return looks_like_html(text)


def login_page_error(platform: str, method: str, url: str) -> AuthenticationError:
    return AuthenticationError(
        f"{platform} {method} {_path(url)} returned an HTML page (a login or identity-provider page) "
        "instead of data: the request was not authenticated. Check that the connection's host is the "
        "API URL (not the UI URL) and that it uses a technical user or OAuth client, not SSO/SAML.",
        platform=platform,
        status_code=200,
    )


def map_http_error(
    *,
    platform: str,
    method: str,
    url: str,
    status: int,
    body: bytes | str | None,
    hints: Mapping[int, str] | None = None,
) -> SapplanError:
    """The exception for a non-2xx answer, naming the call, the status and what to check."""
    hint = (hints or {}).get(status) or GENERIC_HINTS.get(status, "")
    detail = server_message(body)
    message = f"{platform} {method} {_path(url)} failed with HTTP {status}"
    if detail:
        message += f": {detail}"
    message += "."
    if hint:
        message += f" {hint}"
    cls = _class_for(status)
    return cls(message, platform=platform, status_code=status)


def _class_for(status: int) -> type[SapplanError]:
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status in (409, 423):
        return ResourceBusyError
    if status == 429:
        return RateLimitedError
    if status >= 500:
        return ServiceUnavailableError
    return InvalidRequestError


def _path(url: str) -> str:
    """The path of a URL, without query string (which could carry tokens on some platforms)."""
    return urlsplit(url).path or url
