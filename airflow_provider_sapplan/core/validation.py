"""Checks that turn a wrong input into an error naming the field and the fix, before any remote call.

Two families, both shared by every platform:

* connection checks (:func:`check_url`, :func:`check_timeout`, :func:`check_verify` and
  :func:`validate_client_config`, which :class:`~airflow_provider_sapplan.core.hook.PlatformHook` runs on
  every client configuration a hook builds): a malformed URL or a non-positive timeout is a
  :class:`~airflow_provider_sapplan.exceptions.ConnectionConfigError` at once, never a network error
  retried for minutes;
* argument checks for operators and sensors (:func:`as_json_object`, :func:`positive_number`,
  :func:`as_duration`, :func:`as_bool`, :func:`as_int_id`, :func:`as_positive_int`,
  :func:`as_chunk_size`): raise
  :class:`ArgumentError` (a ``ValueError`` and a ``PermanentError``) naming the argument.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_sapplan.core.auth import require_identity_key
from airflow_provider_sapplan.exceptions import ConnectionConfigError, PermanentError

HTTP_SCHEMES = ("https", "http")
NATIVE_HINT = (
    "pass a dict, a JSON object string, or render templates as Python objects with "
    "render_template_as_native_obj=True on the DAG"
)


class ArgumentError(PermanentError, ValueError):
    """A task argument has the wrong type or range; raised when the task is built or rendered."""


# -- connections --------------------------------------------------------------------------------------


_WHITESPACE = re.compile(r"\s")


def check_url(value: Any, field: str, *, connection: str = "this connection", example: str = "") -> str:
    """An absolute http(s) URL with a host, without trailing slash; otherwise a ConnectionConfigError.

    :param field: where the user typed it (``"extra 'api_url'"``, ``"service key 'uaa.url'"``...).
    :param connection: how to name the connection in the message (``"Connection 'x'"``/``"this connection"``).
    :param example: a well-formed value to show in the message.
    """
    shown = f" (e.g. {example})" if example else ""
    where = f"{_capital(connection)}: {field}"
    if not isinstance(value, str) or not value.strip():
        raise ConnectionConfigError(f"{where} is empty; it must be the full https:// URL{shown}.")
    text = value.strip()
    if _WHITESPACE.search(text):
        raise ConnectionConfigError(f"{where} {text!r} contains spaces; it must be one https:// URL{shown}.")
    if "://" not in text:
        raise ConnectionConfigError(f"{where} {text!r} has no scheme; write it as https://{text.lstrip('/')}.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise ConnectionConfigError(f"{where} {text!r} is not a valid URL ({err}){shown}.") from None
    if parts.scheme.lower() not in HTTP_SCHEMES:
        raise ConnectionConfigError(
            f"{where} {text!r} uses the scheme {parts.scheme!r}; only https:// (or http:// for a local test "
            f"server) is supported{shown}."
        )
    if not parts.hostname:
        raise ConnectionConfigError(f"{where} {text!r} has no host name{shown}.")
    if port == 0:
        raise ConnectionConfigError(f"{where} {text!r} has port 0; remove the port or give the real one{shown}.")
    if parts.query or parts.fragment:
        raise ConnectionConfigError(f"{where} {text!r} must not carry a query string or fragment{shown}.")
    return text.rstrip("/")


TIMEOUT_FORMS = "positive seconds (e.g. 300) or connect and read seconds (e.g. 10, 300)"


def check_timeout(value: Any, field: str = "extra 'timeout'", *, connection: str = "this connection") -> tuple:
    """A (connect, read) pair of positive, finite seconds."""
    pair = tuple(value) if isinstance(value, (list, tuple)) else None
    if pair is None or len(pair) != 2:
        raise ConnectionConfigError(f"{_capital(connection)}: {field} must be {TIMEOUT_FORMS}, got {value!r}.")
    for part in pair:
        if isinstance(part, bool) or not isinstance(part, (int, float)) or not math.isfinite(part) or part <= 0:
            raise ConnectionConfigError(f"{_capital(connection)}: {field} must be {TIMEOUT_FORMS}, got {value!r}.")
    return float(pair[0]), float(pair[1])


def parse_timeout_value(value: Any, *, connection: str = "this connection") -> tuple[float, float] | None:
    """Read the ``timeout`` extra (one number = read timeout, or ``[connect, read]``); None when unset.

    A form saves text, so ``"300"``, ``"10, 300"`` and ``"[10, 300]"`` are read as well as numbers and lists.
    """
    if value in (None, ""):
        return None
    if isinstance(value, str):
        if "," in value and not value.strip().startswith("["):
            value = f"[{value}]"
        try:
            value = json.loads(value)
        except ValueError:
            raise ConnectionConfigError(
                f"{_capital(connection)}: extra 'timeout' must be {TIMEOUT_FORMS}, got {value!r}."
            ) from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise ConnectionConfigError(
                f"{_capital(connection)}: extra 'timeout' must be {TIMEOUT_FORMS}, got {value!r}."
            )
        return min(10.0, float(value)), float(value)
    return check_timeout(value, connection=connection)


def parse_requests_per_minute(
    value: Any, *, default: float | None, connection: str = "this connection"
) -> float | None:
    """Read the ``requests_per_minute`` extra: the tenant's request budget; 0 turns it off, empty keeps ``default``."""
    if value in (None, ""):
        return default
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = math.nan
    if isinstance(value, bool) or not math.isfinite(rate) or rate < 0:
        raise ConnectionConfigError(
            f"{_capital(connection)}: extra 'requests_per_minute' must be a number of requests per minute "
            f"(e.g. 600; 0 turns the budget off), got {value!r}."
        )
    return rate or None


def check_verify(value: Any, field: str = "extra 'verify'", *, connection: str = "this connection") -> bool | str:
    """TLS verification: true/false (also as text), or the path of an existing CA bundle."""
    if isinstance(value, bool):
        return value
    if value in (None, ""):
        return True
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        if os.path.isfile(os.path.expanduser(value.strip())):
            return os.path.expanduser(value.strip())
        raise ConnectionConfigError(
            f"{_capital(connection)}: {field} must be true, false or the path of a CA bundle file; "
            f"no file exists at {value!r}."
        )
    raise ConnectionConfigError(f"{_capital(connection)}: {field} must be true, false or a CA bundle path.")


def validate_client_config(config: Any, *, connection: str = "this connection", urls: Mapping[str, Any] = {}) -> None:
    """Every check a client configuration must pass before its first request; shared by all hooks.

    :param config: the hook's :class:`~airflow_provider_sapplan.core.http.ClientConfig`.
    :param urls: every URL the connection supplies, by the field the user types it into
        (``{"extra 'api_url'": ..., "extra 'auth_url'": ...}``); each must be an absolute http(s) URL.
    :raises ConnectionConfigError: naming the field.
    """
    for field, value in urls.items():
        check_url(value, field, connection=connection)
    if not any(value == config.base_url for value in urls.values()):
        check_url(config.base_url, "the API URL", connection=connection)
    check_timeout(config.timeout, "the timeout", connection=connection)
    if not isinstance(config.verify, (bool, str)):
        raise ConnectionConfigError(f"{_capital(connection)}: 'verify' must be true, false or a CA bundle path.")
    if isinstance(config.pool_size, bool) or not isinstance(config.pool_size, int) or config.pool_size < 1:
        raise ConnectionConfigError(f"{_capital(connection)}: the connection pool size must be a positive integer.")
    require_identity_key(config.auth)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- task arguments --------------------------------------------------------------------------------------


def as_json_object(value: Any, field_name: str) -> dict[str, Any] | None:
    """A dict-valued argument, also when a template rendered it to a JSON string.

    ``None`` stays ``None``. A string must hold a JSON object; a Python repr (what a template renders a
    dict to without native rendering) is refused with the hint to use ``render_template_as_native_obj``.
    """
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise ArgumentError(
                f"{field_name} must be a dict, but it is the string {_short(value)} that is not JSON: {NATIVE_HINT}."
            ) from None
        if isinstance(parsed, dict):
            return parsed
        raise ArgumentError(
            f"{field_name} must be a dict; the string {_short(value)} holds a JSON {type(parsed).__name__}. "
            f"{NATIVE_HINT[:1].upper()}{NATIVE_HINT[1:]}."
        )
    raise ArgumentError(f"{field_name} must be a dict, got {type(value).__name__} {_short(value)}.")


def positive_number(value: Any, field_name: str, *, allow_zero: bool = False, maximum: float | None = None) -> float:
    """A finite number > 0 (or >= 0); numeric strings from templates are accepted, ``True`` is not."""
    number = _number(value, field_name, "a number")
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ArgumentError(f"{field_name} must be {bound}, got {value!r}.")
    if maximum is not None and number > maximum:
        raise ArgumentError(f"{field_name} must be at most {maximum:g}, got {value!r}.")
    return number


def as_duration(value: Any, field_name: str, *, allow_zero: bool = False) -> float:
    """Seconds as a positive number or a ``timedelta``; ``"10s"``-style strings name the fix."""
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, str) and value.strip() and not _is_number_text(value):
        raise ArgumentError(
            f"{field_name} must be seconds as a number or a datetime.timedelta, got {value!r}; "
            "write e.g. 10 or timedelta(minutes=5)."
        )
    return positive_number(value, field_name, allow_zero=allow_zero)


def as_bool(value: Any, field_name: str, *, accept_strings: bool = False) -> bool:
    """A real boolean. Strings are refused (``"false"`` is truthy in Python), unless ``accept_strings``
    for templated fields, where exactly true/false (any case) are read."""
    if isinstance(value, bool):
        return value
    if accept_strings and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ArgumentError(
        f"{field_name} must be True or False, got {type(value).__name__} {value!r}"
        + (" (a non-empty string counts as True in Python)." if isinstance(value, str) else ".")
    )


def as_int_id(value: Any, field_name: str) -> int:
    """A positive integer id (``5`` or ``"5"``); ``"abc"``, ``1.5`` and ``True`` are refused."""
    if isinstance(value, bool):
        raise ArgumentError(f"{field_name} must be a whole number id, got {value!r}.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise ArgumentError(f"{field_name} must be a whole number id (e.g. 42), got {type(value).__name__} {value!r}.")
    if number <= 0:
        raise ArgumentError(f"{field_name} must be a positive id, got {value!r}.")
    return number


def as_positive_int(value: Any, field_name: str, *, maximum: int | None = None) -> int:
    """A whole number >= 1 (``4`` or ``"4"``), at most ``maximum``; for counts such as ``max_parallel``."""
    if isinstance(value, bool) or not (
        isinstance(value, int)
        or (isinstance(value, str) and value.strip().isdigit())
        or (isinstance(value, float) and value.is_integer())
    ):
        raise ArgumentError(f"{field_name} must be a whole number, got {type(value).__name__} {value!r}.")
    number = int(value)
    if number < 1 or (maximum is not None and number > maximum):
        bound = f"between 1 and {maximum}" if maximum is not None else "at least 1"
        raise ArgumentError(f"{field_name} must be {bound}, got {number}.")
    return number


def as_chunk_size(value: Any, field_name: str, *, minimum: int, maximum: int) -> int:
    """A chunk size in bytes (an int, or digits), within [minimum, maximum]; ``"10MB"`` names the fix."""
    if isinstance(value, str) and not value.strip().isdigit():
        raise ArgumentError(
            f"{field_name} must be a number of bytes, got {value!r}; write e.g. 10 * 1024 * 1024 for 10 MiB."
        )
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ArgumentError(f"{field_name} must be a whole number of bytes, got {type(value).__name__} {value!r}.")
    size = int(value)
    if not minimum <= size <= maximum:
        raise ArgumentError(
            f"{field_name} must be between {minimum} and {maximum} bytes ({minimum / 2**20:g}-{maximum / 2**20:g} "
            f"MiB), got {size}."
        )
    return size


def _number(value: Any, field_name: str, what: str) -> float:
    if isinstance(value, bool):
        raise ArgumentError(f"{field_name} must be {what}, got {value!r}.")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _is_number_text(value):
        return float(value)
    raise ArgumentError(f"{field_name} must be {what}, got {type(value).__name__} {value!r}.")


def _is_number_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return value.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity", "+inf")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…'"


def is_template(value: Any) -> bool:
    """True for a value only known at run time: a string Jinja will still render, or an XComArg
    (anything Airflow resolves before ``execute``); such values are checked again after rendering."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return hasattr(value, "iter_references")


class CheckedArguments:
    """Operators and sensors check their arguments when built and again after templates are rendered.

    Each class checks its own arguments in ``__init__`` (skipping values that are still templates) and
    overrides :meth:`check_rendered_arguments` (calling ``super()``) to check, and normalise, the rendered values.
    :meth:`check_rendered_arguments` runs right after rendering and again at the start of ``execute``, before any
    remote call, so a task run without rendering (``operator.execute(context)``) is checked too.
    """

    def check_rendered_arguments(self) -> None:
        """Check and normalise rendered arguments; raise :class:`ArgumentError` naming the argument."""

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        self.run_argument_checks()

    def run_argument_checks(self) -> None:
        """Run :meth:`check_rendered_arguments`; when it fails, no extra link was pushed (links render empty)."""
        try:
            self.check_rendered_arguments()
        except Exception:
            self._link_missing = True
            raise
