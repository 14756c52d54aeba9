"""Turning a platform's HTTP answer into one of the provider's exceptions, with a useful message."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_sapplan.core.odata import odata_error_message
from airflow_provider_sapplan.core.redaction import redact
from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    InvalidRequestError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResourceBusyError,
    SapplanError,
    ServiceUnavailableError,
)

GENERIC_HINTS: dict[int, str] = {
    400: "The platform rejected the request; check the ids and parameters passed to the task.",
    401: "The credentials were rejected or the token expired; check the connection's credentials.",
    403: "The user or client lacks a role or permission for this call; ask the tenant admin to grant it.",
    404: "The object does not exist or this user cannot see it; check the id or name and its workspace.",
    409: "The target is busy with other work.",
    413: "The request body is too large for the platform.",
    423: "The target is locked.",
    429: "The platform's rate limit was hit.",
}
"""Hints that hold whether or not the call is retried (the same error is logged before each retry)."""

EXHAUSTED_HINTS: dict[int, str] = {
    409: "It stayed busy through {attempts} attempts; try later, or serialise the DAGs that touch it with a pool.",
    423: "It stayed locked through {attempts} attempts; unlock it, then rerun.",
    429: "The limit stayed hit through {attempts} attempts; poll less often or run fewer tasks in parallel.",
}
"""Added only once retries have run out (``attempts`` > 1): what to do when waiting did not help."""

URL_FIELDS_HINT_KEY = 0
"""Key of ``ClientConfig.status_hints`` under which a hook names the connection fields holding its URLs
(status 0 is never an HTTP status); named when an answer shows the URL itself is wrong."""

WRONG_URL_HINT = "The answer is a web page, not an API error: the URL is probably not the platform's API URL{fields}."

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


def login_page_error(platform: str, method: str, url: str, url_fields: str = "") -> AuthenticationError:
    """A 200 answer that is an HTML page: a login page or the web UI, never the API's data."""
    where = url_fields or "the connection's API URL"
    return AuthenticationError(
        f"{platform} {method} {_path(url)} returned an HTML page (a login or identity-provider page) "
        f"instead of data: the request was not authenticated. Check that {where} point(s) at the API (not the "
        "web UI) and that the connection uses a technical user or OAuth client, not SSO/SAML.",
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
    attempts: int | None = None,
    url_fields: str = "",
    sent_credentials: Iterable[str] = (),
) -> SapplanError:
    """The exception for a non-2xx answer, naming the call, the status and what to check.

    :param attempts: how many times the call was sent, once retries are over; ``None`` while retries
        may still follow (the message is then true whatever happens next).
    :param url_fields: the connection fields holding the URLs (``"extras 'api_url'/'auth_url'"``),
        named when the answer shows the URL itself is wrong.
    :param sent_credentials: the credentials the request carried (:mod:`.redaction`): blanked out of
        the server's text, which some gateways fill with the request they refused.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    url_fields = url_fields or (hints or {}).get(URL_FIELDS_HINT_KEY, "")
    if status in (404, 405) and looks_like_html(text):
        # A JSON API answers a wrong id with JSON; an HTML 404 page comes from a web server or gateway
        # that does not serve the API at this path: a wrong URL, not a wrong id or credential.
        hint = WRONG_URL_HINT.format(fields=f"; check {url_fields}" if url_fields else "")
        cls: type[SapplanError] = InvalidRequestError
    else:
        hint = (hints or {}).get(status) or GENERIC_HINTS.get(status, "")
        cls = _class_for(status)
    if attempts is not None and attempts > 1 and status in EXHAUSTED_HINTS:
        hint = f"{hint} {EXHAUSTED_HINTS[status].format(attempts=attempts)}".strip()
    # Redacted before the message is cut to length (a cut secret would no longer match) and after the
    # JSON is decoded (escapes such as \/ hide a secret in the raw text).
    detail = redact(server_message(redact(text, sent_credentials)), sent_credentials)
    message = f"{platform} {method} {_path(url)} failed with HTTP {status}"
    if detail:
        message += f": {detail}"
    message += "."
    if hint:
        message += f" {hint}"
    return cls(message, platform=platform, status_code=status)


def after_retries(error: SapplanError, attempts: int) -> SapplanError:
    """The final error once ``attempts`` sends all failed: the retry-dependent hint appended once.

    For the transports to call when their attempts run out (the error built per attempt stays neutral).
    """
    status = error.status_code
    if attempts <= 1 or status not in EXHAUSTED_HINTS or "attempts" in error.message:
        return error
    message = f"{error.message} {EXHAUSTED_HINTS[status].format(attempts=attempts)}"
    return type(error)(message, platform=error.platform, status_code=status, details=error.details)


def credentials_rejected(auth: Any, platform: str, url: str, status: int | None) -> AuthenticationError:
    """The token endpoint refused the credentials: say so, with the hint that fits the auth type."""
    hint_of = getattr(auth, "rejection_hint", None)
    hint = hint_of() if callable(hint_of) else "Check the connection's credentials."
    return AuthenticationError(
        f"{platform} rejected the credentials at {_path(url)} (HTTP {status}). {hint} Airflow does not retry "
        "this task: repeated failed logins can lock the account.",
        platform=platform,
        status_code=status,
    )


def token_endpoint_error(auth: Any, platform: str, url: str, error: SapplanError, url_fields: str = "") -> SapplanError:
    """What a failed token request means: rejected credentials (400/401/403), or a wrong login URL (404/405).

    A 404 at the token endpoint is never about workspace or job ids: the login URL points elsewhere.
    """
    status = error.status_code
    if status in (400, 401, 403):
        return credentials_rejected(auth, platform, url, status)
    if status in (404, 405):
        return ConnectionConfigError(
            f"{platform}'s login endpoint {_host_and_path(url)} answered HTTP {status}: the login URL is wrong, "
            f"not the credentials. Check {url_fields or 'the URL the connection uses to log in'}.",
            platform=platform,
            status_code=status,
        )
    return error


def network_error(platform: str, method: str, url: str, exc: BaseException, url_fields: str = "") -> NetworkError:
    """The host could not be reached (or the connection broke): name the fields that hold the URLs."""
    where = url_fields or "the connection's host"
    return NetworkError(
        f"{platform} {method} {_host_and_path(url)} could not complete: {type(exc).__name__}. Check {where} and "
        "the network path (proxy, firewall, DNS) from this worker to it.",
        platform=platform,
    )


def _host_and_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url


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
