"""The asynchronous twin of :mod:`.http`, for triggers: same rules, never blocks the event loop.

Retry decisions, waits, token renewal and error mapping come from the same functions as the sync
client. One ``aiohttp`` session (and so one connection pool) is shared by every client on an event
loop, so a thousand triggers polling one tenant reuse a handful of TCP connections.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import tenacity

from airflow_provider_sapplan.core.auth import TOKEN_CACHE, StaticHeaderAuth, Token, TokenCache, TokenRequest
from airflow_provider_sapplan.core.errors import is_html_response, login_page_error, map_http_error
from airflow_provider_sapplan.core.http import (
    USER_AGENT,
    WRITE_METHODS,
    ClientConfig,
    _log_retry,
    _path_of,
    _tenacity_wait,
    default_idempotency,
)
from airflow_provider_sapplan.core.retry import RetryableFailure, server_requested_delay
from airflow_provider_sapplan.core.tls import client_ssl_context
from airflow_provider_sapplan.exceptions import AuthenticationError, NetworkError, SapplanError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AsyncResponse:
    """A fully read response (triggers only poll small JSON documents)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    method: str

    def json(self) -> Any:
        if self.status == 204 or not self.body:
            return {}
        return jsonlib.loads(self.body)


class _SharedSessions:
    """One ``aiohttp`` session per event loop, closed when its last client lets go of it."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, int]] = (
            weakref.WeakKeyDictionary()
        )

    def acquire(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session, users = self._sessions.get(loop, (None, 0))
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=64, ttl_dns_cache=300)
            session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            users = 0
        self._sessions[loop] = (session, users + 1)
        return session

    async def release(self) -> None:
        loop = asyncio.get_running_loop()
        session, users = self._sessions.get(loop, (None, 0))
        if session is None:
            return
        if users <= 1:
            del self._sessions[loop]
            await session.close()
        else:
            self._sessions[loop] = (session, users - 1)

    async def close_all_on_this_loop(self) -> None:
        loop = asyncio.get_running_loop()
        session, _ = self._sessions.pop(loop, (None, 0))
        if session is not None and not session.closed:
            await session.close()


SHARED_SESSIONS = _SharedSessions()


async def close_shared_session() -> None:
    """Close this loop's shared session whoever still holds it (tests and benchmarks)."""
    await SHARED_SESSIONS.close_all_on_this_loop()


class AsyncHttpClient:
    """Async requests with the provider's retry, token, CSRF and error rules."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        token_cache: TokenCache = TOKEN_CACHE,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self._tokens = token_cache
        self._sleep = sleep or _sleep
        self._own_session: aiohttp.ClientSession | None = None
        self._shared: aiohttp.ClientSession | None = None
        self._csrf_token: str | None = None

    def _needs_own_session(self) -> bool:
        # CSRF tokens are bound to session cookies, and client certificates to the TLS context:
        # neither may leak into the loop-wide shared pool.
        return bool(self.config.csrf_fetch_path or self.config.client_cert)

    async def _session(self) -> aiohttp.ClientSession:
        if not self._needs_own_session():
            if self._shared is None or self._shared.closed:
                self._shared = SHARED_SESSIONS.acquire()
            return self._shared
        if self._own_session is None or self._own_session.closed:
            ssl_context: ssl.SSLContext | bool | None = None
            if self.config.client_cert:
                ssl_context = client_ssl_context(self.config.client_cert, self.config.verify)
            elif self.config.verify is False:
                ssl_context = False
            connector = aiohttp.TCPConnector(limit=8, ssl=ssl_context if ssl_context is not None else True)
            # unsafe=True: keep session cookies from IP-address hosts too (CSRF tokens are bound to them).
            self._own_session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}, cookie_jar=aiohttp.CookieJar(unsafe=True)
            )
        return self._own_session

    def _ssl_kwargs(self, client_cert: tuple[str, str] | None = None) -> dict[str, Any]:
        if client_cert is not None:  # a token request with its own client certificate (x509 service keys)
            return {"ssl": client_ssl_context(client_cert, self.config.verify)}
        if self._own_session is not None or self.config.verify is True:
            return {}
        if self.config.verify is False:
            return {"ssl": False}
        return {"ssl": ssl.create_default_context(cafile=self.config.verify)}

    async def close(self) -> None:
        """Let go of the connection pool (the shared one closes when its last client leaves)."""
        if self._own_session is not None and not self._own_session.closed:
            await self._own_session.close()
        self._own_session = None
        if self._shared is not None:
            self._shared = None
            await SHARED_SESSIONS.release()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        expect_data: bool = True,
    ) -> AsyncResponse:
        method = method.upper()
        url = self.config.url(path)
        safe_to_repeat = default_idempotency(method) if idempotent is None else idempotent

        async def attempt() -> AsyncResponse:
            return await self._attempt(
                method,
                url,
                params=params,
                json=json,
                data=None,
                headers=headers,
                idempotent=safe_to_repeat,
                expect_data=expect_data,
                use_auth=True,
            )

        return await self._with_retries(method, url, attempt)

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        return _json(await self.request("GET", path, **kwargs), self.config.platform)

    async def _with_retries(
        self, method: str, url: str, attempt: Callable[[], Awaitable[AsyncResponse]]
    ) -> AsyncResponse:
        policy = self.config.policy
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(policy.max_attempts),
            wait=_tenacity_wait(policy),
            retry=tenacity.retry_if_exception_type(RetryableFailure),
            sleep=self._sleep,
            before_sleep=_log_retry(self.config.platform, method, url),
            reraise=True,
        )
        try:
            return await retrying(attempt)
        except RetryableFailure as failure:
            raise failure.error from None

    async def _attempt(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Any,
        headers: Mapping[str, str] | None,
        idempotent: bool,
        expect_data: bool,
        use_auth: bool,
        client_cert: tuple[str, str] | None = None,
    ) -> AsyncResponse:
        auth = self.config.auth if use_auth else None
        renewed_token = False
        refetched_csrf = False
        session = await self._session()
        timeout = aiohttp.ClientTimeout(sock_connect=self.config.timeout[0], sock_read=self.config.timeout[1])
        while True:
            request_headers = {"Accept": "application/json", **(headers or {})}
            token: Token | None = None
            if isinstance(auth, StaticHeaderAuth):
                request_headers.update(auth.headers())
            elif auth is not None:
                token = await self._token()
                request_headers.update(auth.authorization_header(token))
            if use_auth and self.config.csrf_fetch_path and method in WRITE_METHODS:
                request_headers["X-CSRF-Token"] = await self._csrf(refresh=False)
            try:
                async with session.request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    json=json,
                    data=data,
                    headers=request_headers,
                    timeout=timeout,
                    **self._ssl_kwargs(client_cert),
                ) as raw:
                    body = await raw.read()
                    response = AsyncResponse(raw.status, dict(raw.headers), body, url, method)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = NetworkError(
                    f"{self.config.platform} {method} {_path_of(url)} could not complete: "
                    f"{type(exc).__name__}. Check the connection's host and the network path to it.",
                    platform=self.config.platform,
                )
                unsent = isinstance(exc, aiohttp.ClientConnectorError)
                if idempotent or unsent:
                    raise RetryableFailure(error) from exc
                raise error from exc

            if response.status == 401 and token is not None and not renewed_token:
                self._tokens.discard(auth.cache_key, token.value)  # type: ignore[union-attr]
                renewed_token = True
                continue
            if (
                response.status == 403
                and self.config.csrf_fetch_path
                and _header(response.headers, "x-csrf-token").lower() == "required"
                and not refetched_csrf
            ):
                await self._csrf(refresh=True)
                refetched_csrf = True
                continue
            return self._check(response, idempotent=idempotent, expect_data=expect_data)

    def _check(self, response: AsyncResponse, *, idempotent: bool, expect_data: bool) -> AsyncResponse:
        if response.status >= 400:
            error = map_http_error(
                platform=self.config.platform,
                method=response.method,
                url=response.url,
                status=response.status,
                body=response.body,
                hints=self.config.status_hints,
            )
            if self.config.policy.should_retry_status(response.status, idempotent=idempotent):
                raise RetryableFailure(error, server_requested_delay(response.headers))
            raise error
        if expect_data and response.status != 204 and is_html_response(response.headers, response.body[:200]):
            raise login_page_error(self.config.platform, response.method, response.url)
        return response

    async def _token(self) -> Token:
        auth = self.config.auth
        assert auth is not None and not isinstance(auth, StaticHeaderAuth)
        key = auth.cache_key
        current = self._tokens.get(key)
        if current is not None and not current.needs_renewal():
            return current
        async with self._tokens.async_lock(key):
            current = self._tokens.get(key)
            if current is not None and not current.needs_renewal():
                return current
            fresh: Token | None = None
            if current is not None and not current.expired():
                refresh = auth.refresh_request(current)
                if refresh is not None:
                    try:
                        fresh = await self._fetch_token(refresh)
                    except AuthenticationError as err:
                        log.info("%s token refresh failed (%s); logging in again.", auth.platform, err)
            if fresh is None:
                fresh = await self._fetch_token(auth.authenticate_request())
            self._tokens.put(key, fresh)
            return fresh

    async def _fetch_token(self, spec: TokenRequest) -> Token:
        auth = self.config.auth
        assert auth is not None and not isinstance(auth, StaticHeaderAuth)

        async def attempt() -> AsyncResponse:
            return await self._attempt(
                spec.method,
                spec.url,
                params=None,
                json=spec.json,
                data=spec.data,
                headers=spec.headers,
                idempotent=True,
                expect_data=True,
                use_auth=False,
                client_cert=spec.client_cert,
            )

        try:
            response = await self._with_retries(spec.method, spec.url, attempt)
        except SapplanError as err:
            if err.status_code in (400, 401, 403):
                raise AuthenticationError(
                    f"{self.config.platform} rejected the credentials at {_path_of(spec.url)} "
                    f"(HTTP {err.status_code}). Check the connection's login and password, client id "
                    "and secret, or certificate and key.",
                    platform=self.config.platform,
                    status_code=err.status_code,
                ) from None
            raise
        return auth.parse_token(_json(response, self.config.platform))

    async def _csrf(self, *, refresh: bool) -> str:
        if self._csrf_token is None or refresh:
            assert self.config.csrf_fetch_path is not None
            response = await self.request(
                "GET", self.config.csrf_fetch_path, headers={"X-CSRF-Token": "Fetch"}, expect_data=False
            )
            token = _header(response.headers, "x-csrf-token")
            if not token:
                raise AuthenticationError(
                    f"{self.config.platform} did not return a CSRF token from {self.config.csrf_fetch_path}.",
                    platform=self.config.platform,
                )
            self._csrf_token = token
        return self._csrf_token


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _json(response: AsyncResponse, platform: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise SapplanError(
            f"{platform} answered {response.method} {_path_of(response.url)} with a body that is not JSON; "
            "check that the connection points at the API URL.",
            platform=platform,
            status_code=response.status,
        ) from None
