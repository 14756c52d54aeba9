"""Credentials and the per-process token cache shared by every platform.

An auth scheme only *describes* its requests (:class:`TokenRequest`) and how to read the answer; the
sync and async transports execute them. That keeps token logic identical in workers and in the
triggerer, and lets one cache serve both.

Tokens are cached per credential for the life of the process: one token per credential per process,
not one per task or poll. A token is renewed shortly before it expires; concurrent callers wait for
the one renewal in flight instead of starting their own.

The rule every scheme follows: its cache key is a digest of *everything that proves its identity*
(certificate and private key and key password, client id and secret, user and password, plus the
endpoint that issues the token), never the secret itself. Two credentials that differ in any of those
never share a token. :class:`TokenAuth` enforces it: a subclass cannot be instantiated without
:meth:`TokenAuth.identity`, and :func:`require_identity_key` (called for every hook's client
configuration) refuses an auth object without a proper digest key.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import re
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
        """Identifies the credential: a digest of :meth:`identity`, never the secret itself."""
        ...

    def identity(self) -> tuple[Any, ...]:
        """Everything that proves the identity (secrets as digests); see :class:`TokenAuth`."""
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


def credential_key(*parts: Any) -> str:
    """A stable, non-reversible cache key for a credential (SHA-256 over every part)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def secret_digest(value: str | bytes | None) -> str | None:
    """A SHA-256 digest standing for a secret in an identity tuple (None stays None)."""
    if value is None:
        return None
    raw = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(raw).hexdigest()


_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class TokenAuth(abc.ABC):
    """Base for every token scheme: the cache key is derived from :meth:`identity`, never chosen ad hoc.

    A subclass names its platform and auth kind and lists, in :meth:`identity`, every value that proves
    who it is. The cache key is the SHA-256 of the class, the platform and those values: changing the
    private key, its password, the client secret or the token URL gives another key, so another token.
    """

    platform: str = ""
    auth_kind: str = ""
    """``basic``, ``certificate``, ``client_secret``, ``x509``...: used in messages and hints."""

    @abc.abstractmethod
    def identity(self) -> tuple[Any, ...]:
        """Everything that proves this credential's identity; secrets as :func:`secret_digest` values."""

    @property
    def cache_key(self) -> str:
        cached = self.__dict__.get("_identity_cache_key")
        if cached is None:
            cached = credential_key(
                type(self).__module__, type(self).__qualname__, self.platform, self.auth_kind, *self.identity()
            )
            self.__dict__["_identity_cache_key"] = cached
        return cached

    def rejection_hint(self) -> str:
        """What to check when the token endpoint rejects these credentials (platform and kind specific)."""
        return "Check the connection's credentials."

    @abc.abstractmethod
    def authenticate_request(self) -> TokenRequest: ...

    @abc.abstractmethod
    def refresh_request(self, token: Token) -> TokenRequest | None: ...

    @abc.abstractmethod
    def parse_token(self, payload: Any) -> Token: ...

    @abc.abstractmethod
    def authorization_header(self, token: Token) -> dict[str, str]: ...


class StaticHeaderAuth:
    """Credentials sent as-is with every request (e.g. HTTP basic on BTP's lite plan); no token.

    :param identity: what proves the identity (e.g. user and a digest of the password); defaults to a
        digest of the headers. Gives the same kind of cache key a token scheme has.
    """

    platform = ""
    auth_kind = "basic"

    def __init__(self, headers: dict[str, str], *, identity: tuple[Any, ...] | None = None, hint: str = "") -> None:
        self._headers = dict(headers)
        self._identity = identity if identity is not None else tuple(secret_digest(v) for v in sorted(headers.values()))
        self._hint = hint or "Check the connection's login and password."

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def identity(self) -> tuple[Any, ...]:
        return self._identity

    @property
    def cache_key(self) -> str:
        return credential_key("static", *self._identity)

    def rejection_hint(self) -> str:
        return self._hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self._headers)} header(s) hidden>)"


def require_identity_key(auth: Any) -> None:
    """The rule for every auth object a client is built with: a digest cache key from its identity.

    :raises TypeError: for a programming error (a scheme that does not derive its key from an
        identity), so a new platform cannot ship a scheme whose tokens could be shared across
        credentials.
    """
    if auth is None:
        return
    if not isinstance(auth, (TokenAuth, StaticHeaderAuth)):
        raise TypeError(
            f"{type(auth).__name__} must subclass core.auth.TokenAuth (or be a StaticHeaderAuth) so its token "
            "cache key is a digest of everything that proves its identity."
        )
    key = auth.cache_key
    if not isinstance(key, str) or not _DIGEST.match(key):
        raise TypeError(f"{type(auth).__name__}.cache_key must be a SHA-256 hex digest, got {type(key).__name__}.")


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
