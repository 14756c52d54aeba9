"""The asynchronous twin of :mod:`.http`, for triggers: same rules, never blocks the event loop.

Retry decisions, waits, token renewal, CSRF, login-page detection and error mapping come from
:mod:`.transport_policy`, as for the sync client; this module only does the I/O. One ``aiohttp``
session (and so one connection pool) is shared by every client on an event loop, so a thousand
triggers polling one tenant reuse a handful of TCP connections.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp

from airflow_provider_sapplan.core.auth import TOKEN_CACHE, StaticHeaderAuth, Token, TokenCache, TokenRequest
from airflow_provider_sapplan.core.http import USER_AGENT, ClientConfig
from airflow_provider_sapplan.core.retry import RetryableFailure
from airflow_provider_sapplan.core.tls import client_ssl_context
from airflow_provider_sapplan.core.transport_policy import Exchange, Step, TransportPolicy
from airflow_provider_sapplan.exceptions import AuthenticationError, SapplanError

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
        self.policy = TransportPolicy.of(config)
        self._tokens = token_cache
        self._sleep = sleep or _sleep
        self._own_session: aiohttp.ClientSession | None = None
        self._shared: aiohttp.ClientSession | None = None
        self._csrf_token: str | None = None
        self._verify_kwargs: dict[str, Any] | None = None
        self._timeout = aiohttp.ClientTimeout(sock_connect=config.timeout[0], sock_read=config.timeout[1])

    def _needs_own_session(self, exchange: Exchange) -> bool:
        # Client certificates are bound to the TLS context, and CSRF tokens to session cookies: a
        # client with a certificate, and the CSRF fetch and the writes that carry its token, never use
        # the loop-wide shared pool. Reads (every poll) do, even on CSRF platforms, so thousands of
        # waits hold a bounded number of connections instead of one (reopened per poll) each.
        return bool(self.config.client_cert) or exchange.session_bound

    async def _session(self, exchange: Exchange) -> aiohttp.ClientSession:
        if not self._needs_own_session(exchange):
            if self._shared is None or self._shared.closed:
                self._shared = SHARED_SESSIONS.acquire()
            return self._shared
        if self._own_session is None or self._own_session.closed:
            ssl_context: ssl.SSLContext | bool = True
            if self.config.client_cert:
                ssl_context = client_ssl_context(self.config.client_cert, self.config.verify)
            connector = aiohttp.TCPConnector(limit=8, ssl=ssl_context)
            # unsafe=True: keep session cookies from IP-address hosts too (CSRF tokens are bound to them).
            self._own_session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}, cookie_jar=aiohttp.CookieJar(unsafe=True)
            )
        return self._own_session

    def _ssl_kwargs(self, client_cert: tuple[str, str] | None = None) -> dict[str, Any]:
        if client_cert is not None:  # a token request with its own client certificate (x509 service keys)
            return {"ssl": client_ssl_context(client_cert, self.config.verify)}
        if self.config.client_cert or self.config.verify is True:
            return {}  # the own session's connector carries the certificate; else the default context
        if self._verify_kwargs is None:  # built once per client (loading a CA file costs milliseconds)
            verify = self.config.verify
            self._verify_kwargs = {"ssl": False if verify is False else ssl.create_default_context(cafile=verify)}
        return self._verify_kwargs

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
        call = {"params": dict(params) if params else None, "json": json, "extra_headers": headers}
        exchange = self.policy.exchange(
            method, self.config.url(path), idempotent=idempotent, expect_data=expect_data, **call
        )
        return await self._with_retries(exchange)

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        return _json(await self.request("GET", path, **kwargs), self.policy)

    async def _with_retries(self, exchange: Exchange) -> AsyncResponse:
        """Attempts until one succeeds or :meth:`TransportPolicy.retry_wait` says they are used up.

        The first attempt uses the fresh exchange as is and nothing else: a poll that succeeds (nearly
        all of them) pays for no retry machinery.
        """
        attempt = 1
        current = exchange
        while True:
            try:
                return await self._attempt(current)
            except RetryableFailure as failure:
                wait = self.policy.retry_wait(attempt, failure, exchange.method, exchange.url)
                if wait is None:
                    raise self.policy.exhausted(failure.error) from None
            await self._sleep(wait)
            attempt += 1
            current = exchange.attempt()  # a new attempt: one token renewal and one CSRF refetch again

    async def _attempt(self, exchange: Exchange) -> AsyncResponse:
        """One attempt: the whole body is read; replayed once after a token renewal or CSRF refetch."""
        session = await self._session(exchange)
        timeout = self._timeout
        while True:
            request_headers = exchange.headers(
                token=await self._token() if exchange.needs_token else None,
                csrf=await self._csrf(refresh=False) if exchange.needs_csrf else None,
            )
            delay = self.policy.send_delay(exchange.url)
            if delay:
                await self._sleep(delay)
            try:
                async with session.request(
                    exchange.method,
                    exchange.url,
                    params=exchange.params,
                    json=exchange.json,
                    data=exchange.data,
                    headers=request_headers,
                    timeout=timeout,
                    **self._ssl_kwargs(exchange.client_cert),
                ) as raw:
                    body = await raw.read()
                    response = AsyncResponse(raw.status, dict(raw.headers), body, exchange.url, exchange.method)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                unsent = isinstance(exc, aiohttp.ClientConnectorError)
                raise exchange.network_failure(exc, unsent=unsent) from exc
            step = exchange.judge(
                response.status,
                response.headers,
                error_body=partial(getattr, response, "body"),
                body_peek=partial(getattr, response, "body"),
            )
            if step is Step.RENEW_TOKEN:
                self._tokens.discard(self.policy.auth.cache_key, exchange.token.value)  # type: ignore[union-attr]
            elif step is Step.REFETCH_CSRF:
                await self._csrf(refresh=True)
            else:
                return response

    async def _token(self) -> Token:
        auth = self.config.auth
        assert auth is not None and not isinstance(auth, StaticHeaderAuth)
        key = auth.cache_key
        current = self._tokens.get(key)
        if self.policy.reusable(current):
            return current  # type: ignore[return-value]
        async with self._tokens.async_lock(key):
            current = self._tokens.get(key)
            if self.policy.reusable(current):
                return current  # type: ignore[return-value]
            for spec, is_refresh in self.policy.token_requests(current):
                try:
                    fresh = await self._fetch_token(spec)
                    break
                except AuthenticationError as err:
                    if not is_refresh:
                        raise
                    self.policy.refresh_failed(err)
            self._tokens.put(key, fresh)
            return fresh

    async def _fetch_token(self, spec: TokenRequest) -> Token:
        auth = self.config.auth
        assert auth is not None and not isinstance(auth, StaticHeaderAuth)
        try:
            response = await self._with_retries(self.policy.token_exchange(spec))
        except SapplanError as err:
            raise self.policy.token_rejected(spec.url, err) from None
        return auth.parse_token(_json(response, self.policy))

    async def _csrf(self, *, refresh: bool) -> str:
        if self._csrf_token is None or refresh:
            assert self.config.csrf_fetch_path is not None
            exchange = self.policy.exchange(
                "GET",
                self.config.url(self.config.csrf_fetch_path),
                idempotent=True,
                expect_data=False,
                extra_headers=self.policy.csrf_fetch_headers(),
                csrf_fetch=True,
            )
            response = await self._with_retries(exchange)
            self._csrf_token = self.policy.csrf_token(response.headers)
        return self._csrf_token


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def _json(response: AsyncResponse, policy: TransportPolicy) -> Any:
    try:
        return response.json()
    except ValueError:
        raise policy.not_json(response.method, response.url, response.status) from None
