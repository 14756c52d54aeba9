"""Keeping a request's own credentials out of the error messages built from the platform's answer.

Error messages quote the platform's answer (its JSON message, or the start of a text body) because
that is usually what names the fix. Some servers and gateways echo the request back in that text:
the ``Authorization`` header, or the form body of a token request (client secret, password,
refresh token). Those messages end up in task logs, trigger events and so in the metadata
database, so the transports pass what the request carried as credentials to
:func:`airflow_provider_sapplan.core.errors.map_http_error`, which blanks them out with
:func:`redact`: raw, URL-encoded and base64 forms, and for HTTP basic auth the password and the
``user:password`` pair as well as the header value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus

#: Values shorter than this are not redacted (they would blank out ordinary words of the message).
MIN_LENGTH = 6
MASK = "***"
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization")
#: Token request fields that name things rather than prove an identity: kept, so messages stay readable.
_PUBLIC_FIELDS = frozenset({"grant_type", "scope", "response_type", "token_format", "client_id", "username"})


def credentials_in_headers(headers: Mapping[str, str] | None) -> list[str]:
    """The credential values of ``Authorization`` headers: the whole value, and for Basic the password too."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        if name.lower() not in _CREDENTIAL_HEADERS or not isinstance(value, str):
            continue
        scheme, _, credential = value.strip().partition(" ")
        credential = credential.strip()
        found += [value.strip(), credential]
        if scheme.lower() == "basic" and credential:
            try:
                pair = base64.b64decode(credential, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                continue
            found += [pair, pair.partition(":")[2]]
    return found


def credentials_in_body(data: Any = None, json: Any = None) -> list[str]:
    """The string values of a token request's form (dict or URL-encoded text) or JSON body, but public fields."""
    found: list[str] = []
    if isinstance(data, Mapping):
        found += [str(value) for key, value in data.items() if value is not None and key not in _PUBLIC_FIELDS]
    elif isinstance(data, (str, bytes)):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        found += [value for key, value in parse_qsl(text) if key not in _PUBLIC_FIELDS]
    found += list(_strings(json))
    return found


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in _PUBLIC_FIELDS:
                yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (raw, URL-encoded, base64) of at least :data:`MIN_LENGTH` replaced by ``***``."""
    forms: set[str] = set()
    for secret in secrets:
        if not isinstance(secret, str) or len(secret) < MIN_LENGTH:
            continue
        forms.update({secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(secret.encode()).decode()})
    for form in sorted(forms, key=len, reverse=True):
        if len(form) >= MIN_LENGTH and form in text:
            text = text.replace(form, MASK)
    return text
