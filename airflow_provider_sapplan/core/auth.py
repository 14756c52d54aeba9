"""Credentials and the per-process token cache shared by every platform.

An auth scheme only *describes* its requests (:class:`TokenRequest`) and how to read the answer; the
sync and async transports execute them. That keeps token logic identical in workers and in the
triggerer, and lets one cache serve both.

Tokens are cached per credential (a hash of the connection's identity and secret, never the secret
itself) for the life of the process: one token per connection per process, not one per task or
poll. A token is renewed shortly before it expires; concurrent callers wait for the one renewal in
flight instead of starting their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Token:
    """An access token and the epoch second it expires at."""

    value: str = field(repr=False)
    expires_at: float
    issued_at: float = field(default_factory=time.time)

    @property
    def lifetime(self) -> float:
        return max(self.expires_at - self.issued_at, 0.0)

    def renew_lead(self) -> float:
        """Renew this long before expiry: two minutes, or a fifth of a short lifetime."""
        return min(120.0, self.lifetime * 0.2)

    def needs_renewal(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return now >= self.expires_at - self.renew_lead()

    def expired(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return now >= self.expires_at


@dataclass(frozen=True)
class TokenRequest:
    """A token endpoint call, described independently of the HTTP library that sends it."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    json: Any = field(default=None, repr=False)
    data: dict[str, str] | None = field(default=None, repr=False)
    client_cert: tuple[str, str] | None = None  # (cert file, key file) for mutual TLS


class AuthScheme(Protocol):
    """What a platform tells the transport about its authentication."""

    platform: str

    @property
    def cache_key(self) -> str:
        """Identifies the credential; a hash, never the secret itself."""
        ...

    def authenticate_request(self) -> TokenRequest:
        """The request that obtains a brand-new token."""
        ...

    def refresh_request(self, token: Token) -> TokenRequest | None:
        """The request that renews ``token``, or None when the platform has no refresh call."""
        ...

    def parse_token(self, payload: Any) -> Token:
        """Read the token endpoint's JSON answer; raise AuthenticationError if it holds no token."""
        ...

    def authorization_header(self, token: Token) -> dict[str, str]:
        """Headers that authenticate an API call with ``token``."""
        ...


class StaticHeaderAuth:
    """Credentials sent as-is with every request (e.g. HTTP basic on BTP's lite plan); no token."""

    platform = ""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = dict(headers)

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self._headers)} header(s) hidden>)"


def credential_key(*parts: Any) -> str:
    """A stable, non-reversible cache key for a credential."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


class TokenCache:
    """Process-wide token store with single-flight renewal for threads and for event loops."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._guard = threading.Lock()
        self._thread_locks: dict[str, threading.Lock] = {}
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, key: str) -> Token | None:
        return self._tokens.get(key)

    def put(self, key: str, token: Token) -> None:
        self._tokens[key] = token

    def discard(self, key: str, stale_value: str | None = None) -> None:
        """Forget the token for ``key`` (only if it is still ``stale_value``, when given)."""
        with self._guard:
            current = self._tokens.get(key)
            if current is not None and (stale_value is None or current.value == stale_value):
                del self._tokens[key]

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()

    def thread_lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._thread_locks.setdefault(key, threading.Lock())

    def async_lock(self, key: str) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            per_loop = self._async_locks.setdefault(loop, {})
            return per_loop.setdefault(key, asyncio.Lock())


TOKEN_CACHE = TokenCache()
"""The cache every hook in this process shares."""
