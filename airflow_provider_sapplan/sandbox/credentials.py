"""The credentials the sandbox accepts, when a test wants its own instead of the documented ones.

By default every platform accepts the fixed sandbox credentials of docs/sandbox.md (Anaplan
``demo@example.com`` / ``demo``, the Job Scheduling client secret, ...). A test that checks where
secrets end up (tests/system/test_secrets.py) needs every connection to carry a unique,
recognisable secret instead, so each platform's login check asks :class:`SandboxCredentials` for
the value, passing its documented default::

    password = self.context.credentials.get("anaplan", "password", USER_PASSWORD)

Configure them from Python (``server.context.credentials.set("anaplan", password="...")``) or
from the command line (``--credentials FILE``, a JSON object ``{platform: {key: value}}``). The
sandbox never prints configured credentials (the connection hints are left out when any is set).
Credentials are configuration, like ``--time-scale``: ``POST /_sandbox/reset`` keeps them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Platform -> the credential keys it reads (values default to the platform's documented ones).
KEYS: dict[str, tuple[str, ...]] = {
    "anaplan": ("user", "password"),
    "sap_job_scheduling": ("client_id", "client_secret", "lite_user", "lite_password"),
    "sap_cloud_integration": (
        "api_client_id",
        "api_client_secret",
        "flow_client_id",
        "flow_client_secret",
        "basic_user",
        "basic_password",
    ),
    "sap_data_intelligence": ("tenant", "user", "password"),
    "sap_analytics_cloud": (
        "api_client_id",
        "api_client_secret",
        "user_client_id",
        "user_client_secret",
        "refresh_token",
    ),
}


class SandboxCredentials:
    """Per-platform credential overrides; :meth:`get` falls back to the platform's default.

    Thread-safe; the values never appear in :func:`repr` (only which keys are set).
    """

    def __init__(self, values: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[str, str]] = {}
        if values:
            self.update(values)

    def __repr__(self) -> str:
        with self._lock:
            keys = {platform: sorted(values) for platform, values in self._values.items()}
        return f"SandboxCredentials(configured={keys})"

    @property
    def configured(self) -> bool:
        """True when any credential was set (the CLI then prints no connection hints)."""
        with self._lock:
            return any(self._values.values())

    def get(self, platform: str, key: str, default: str) -> str:
        """The configured value of ``platform``'s ``key``, else ``default`` (the documented one)."""
        with self._lock:
            return self._values.get(platform, {}).get(key, default)

    def set(self, platform: str, **values: str) -> None:
        """Set some of ``platform``'s credentials (see :data:`KEYS`); raises ValueError naming the fix."""
        self.update({platform: values})

    def update(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        """Set credentials from ``{platform: {key: value}}``, checked entirely before any is applied."""
        checked: dict[str, dict[str, str]] = {}
        if not isinstance(values, Mapping):
            raise ValueError('credentials are a JSON object {"platform": {"key": "value"}}')
        for platform, entries in values.items():
            if platform not in KEYS:
                raise ValueError(f"unknown sandbox platform {platform!r}: use one of {', '.join(sorted(KEYS))}")
            if not isinstance(entries, Mapping):
                raise ValueError(f"credentials of {platform} are an object of {', '.join(KEYS[platform])}")
            for key, value in entries.items():
                if key not in KEYS[platform]:
                    raise ValueError(f"unknown {platform} credential {key!r}: use one of {', '.join(KEYS[platform])}")
                if not isinstance(value, str) or not value:
                    raise ValueError(f"the {platform} credential {key!r} must be a non-empty string")
            checked[platform] = dict(entries)
        with self._lock:
            for platform, entries in checked.items():
                self._values.setdefault(platform, {}).update(entries)

    @classmethod
    def from_file(cls, path: str | Path) -> SandboxCredentials:
        """Credentials read from a JSON file (``--credentials``); ValueError names what is wrong."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read sandbox credentials from {path}: {type(exc).__name__}") from None
        return cls(data)
