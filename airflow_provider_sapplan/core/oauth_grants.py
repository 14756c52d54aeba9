"""Generic OAuth 2.0 grants as core auth schemes: client credentials, and the refresh-token grant.

Both send the client id and secret as HTTP Basic to a token URL (XSUAA and most SAP token
endpoints) and add optional fixed headers to every API call (SAC's ``x-sap-sac-custom-auth``).

The refresh-token grant exchanges a stored user-context refresh token for access tokens. Some
servers rotate the refresh token on every exchange (the old one then stops working): the new one
is kept for the rest of the process (shared by every hook on the same credential) and a log line,
without the token, says the connection should be updated.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from airflow_provider_sapplan.core.auth import Token, TokenAuth, TokenRequest, secret_digest
from airflow_provider_sapplan.core.tls import pem_files
from airflow_provider_sapplan.exceptions import AuthenticationError

log = logging.getLogger(__name__)

DEFAULT_EXPIRES_IN = 3600.0


def _basic(client_id: str, client_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


def _mask(secret: str) -> None:
    """Register a secret with Airflow's masker (skipped on an event loop, where it may block)."""
    try:
        asyncio.get_running_loop()
        return
    except RuntimeError:
        pass
    try:
        from airflow_provider_sapplan._compat import mask_secret

        mask_secret(secret)
    except Exception:  # masking must never break authentication
        log.debug("Could not register a secret with the log masker.", exc_info=True)


class _OAuthGrant(TokenAuth):
    """Shared parts: token URL, client credentials, API headers and parsing the token answer."""

    platform = ""
    grant = ""

    def __init__(
        self,
        *,
        platform: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        api_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.platform = platform
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.api_headers = dict(api_headers or {})

    def refresh_request(self, token: Token) -> TokenRequest | None:
        return None  # a new token is simply requested with the same grant

    def authorization_header(self, token: Token) -> dict[str, str]:
        return {"Authorization": f"Bearer {token.value}", **self.api_headers}

    def parse_token(self, payload: Any) -> Token:
        if not isinstance(payload, Mapping) or not payload.get("access_token"):
            raise AuthenticationError(
                f"{self.platform}: the token endpoint {self.token_url} returned no access_token; check the "
                "connection's token URL (it must be the OAuth token endpoint, ending in /oauth/token).",
                platform=self.platform,
            )
        try:
            expires_in = float(payload.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        now = time.time()
        return Token(value=str(payload["access_token"]), expires_at=now + expires_in, issued_at=now)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, token_url={self.token_url!r})"


class ClientCredentialsGrant(_OAuthGrant):
    """``grant_type=client_credentials`` with the client id and secret as HTTP Basic."""

    grant = "client_credentials"
    auth_kind = "client_secret"

    def identity(self) -> tuple[Any, ...]:
        """Token URL, client id and a digest of the secret."""
        return (self.grant, self.token_url, self.client_id, secret_digest(self._client_secret))

    def rejection_hint(self) -> str:
        return "Check the connection's OAuth client id (Login), secret (Password) and token URL."

    def authenticate_request(self) -> TokenRequest:
        return TokenRequest(
            "POST",
            self.token_url,
            headers={"Authorization": _basic(self.client_id, self._client_secret)},
            data={"grant_type": "client_credentials"},
        )


class _RotatedRefreshTokens:
    """Refresh tokens a server rotated, per credential cache key, for the life of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._tokens.get(key)

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._tokens[key] = value

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


ROTATED_REFRESH_TOKENS = _RotatedRefreshTokens()


class RefreshTokenGrant(_OAuthGrant):
    """``grant_type=refresh_token``: a user-context token from a stored refresh token.

    :param refresh_token: the refresh token from the connection (an *Interactive Usage* client's
        authorization-code flow).
    :param conn_id: named in the log line asking to update the connection after a rotation.
    """

    grant = "refresh_token"

    def __init__(self, *, refresh_token: str, conn_id: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._refresh_token = refresh_token
        self.conn_id = conn_id

    auth_kind = "refresh_token"

    def identity(self) -> tuple[Any, ...]:
        """Token URL, client id, and digests of the secret and of the configured refresh token."""
        return (
            self.grant,
            self.token_url,
            self.client_id,
            secret_digest(self._client_secret),
            secret_digest(self._refresh_token),
        )

    def rejection_hint(self) -> str:
        return (
            "Check the OAuth client id and secret, and the refresh_token extra: it expires or is revoked when the "
            "user's session ends; fetch a new one from the Interactive Usage client."
        )

    @property
    def current_refresh_token(self) -> str:
        """The rotated refresh token if the server issued one in this process, else the configured one."""
        return ROTATED_REFRESH_TOKENS.get(self.cache_key) or self._refresh_token

    def authenticate_request(self) -> TokenRequest:
        return TokenRequest(
            "POST",
            self.token_url,
            headers={"Authorization": _basic(self.client_id, self._client_secret)},
            data={"grant_type": "refresh_token", "refresh_token": self.current_refresh_token},
        )

    def parse_token(self, payload: Any) -> Token:
        token = super().parse_token(payload)
        rotated = payload.get("refresh_token") if isinstance(payload, Mapping) else None
        if isinstance(rotated, str) and rotated and rotated != self.current_refresh_token:
            _mask(rotated)
            ROTATED_REFRESH_TOKENS.put(self.cache_key, rotated)
            log.warning(
                "%s rotated the refresh token of connection %r: the new one is used for the rest of this "
                "process, but the stored one may stop working. Update the connection's refresh_token extra "
                "with a fresh token from the OAuth client.",
                self.platform,
                self.conn_id,
            )
        return token


class ServiceKeyGrant(TokenAuth):
    """OAuth client credentials from an SAP BTP service key: the secret as HTTP Basic, or x509 (mutual TLS).

    ``key`` is the platform's parsed service key, with ``kind`` (``"x509"`` or secret), ``token_url``,
    ``client_id``, ``client_secret``, ``certificate`` and ``key``. Job Scheduling (XSUAA) and Cloud
    Integration use it; a subclass sets :attr:`platform`, :attr:`missing_token_hint` and its
    ``rejection_hint``, and may add to :meth:`identity` (Cloud Integration adds its plan).
    """

    missing_token_hint = "check the service key."

    def __init__(self, key: Any) -> None:
        self.key = key
        self.auth_kind = key.kind

    def identity(self) -> tuple[Any, ...]:
        """Token URL + client id + the secret (client secret, or certificate and key), as digests."""
        key = self.key
        if key.kind == "x509":
            return (key.token_url, key.client_id, secret_digest(key.certificate), secret_digest(key.key))
        return (key.token_url, key.client_id, secret_digest(key.client_secret))

    def authenticate_request(self) -> TokenRequest:
        key = self.key
        assert key.token_url is not None
        if key.kind == "x509":
            return TokenRequest(
                "POST",
                key.token_url,
                data={"grant_type": "client_credentials", "client_id": str(key.client_id)},
                client_cert=pem_files(str(key.certificate), str(key.key)),
            )
        return TokenRequest(
            "POST",
            key.token_url,
            headers={"Authorization": _basic(str(key.client_id), str(key.client_secret))},
            data={"grant_type": "client_credentials"},
        )

    def refresh_request(self, token: Token) -> TokenRequest | None:
        return None  # client credentials: a new token is simply requested

    def parse_token(self, payload: Any) -> Token:
        if not isinstance(payload, Mapping) or not payload.get("access_token"):
            raise AuthenticationError(
                f"{self.platform}: the token endpoint returned no access_token; {self.missing_token_hint}",
                platform=self.platform,
            )
        try:
            expires_in = float(payload.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        now = time.time()
        return Token(value=str(payload["access_token"]), expires_at=now + expires_in, issued_at=now)

    def authorization_header(self, token: Token) -> dict[str, str]:
        return {"Authorization": f"Bearer {token.value}"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.key.client_id!r}, token_url={self.key.token_url!r})"
