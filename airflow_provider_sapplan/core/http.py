"""The synchronous HTTP client every hook uses: session, timeouts, retries, tokens, CSRF, errors.

This module (with :mod:`.async_http` for triggers) is the only place in the package where a
request is retried, a token is fetched or renewed, a CSRF token is handled or an HTTP status is
turned into an exception. What to do in each case is decided in :mod:`.transport_policy`, shared
with the async client; this module does the I/O. Platform hooks describe endpoints; they never
loop on failures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import requests
import tenacity
from requests.adapters import HTTPAdapter

from airflow_provider_sapplan import __version__
from airflow_provider_sapplan.core.auth import TOKEN_CACHE, AuthScheme, StaticHeaderAuth, Token, TokenCache
from airflow_provider_sapplan.core.retry import RetryableFailure, RetryPolicy, is_unsent_connection_error
from airflow_provider_sapplan.core.transport_policy import (
    Exchange,
    Step,
    TransportPolicy,
    path_of,
)
from airflow_provider_sapplan.exceptions import AuthenticationError, SapplanError

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-sapplan/{__version__}"
SEND_BLOCK_SIZE = 1024 * 1024
"""Bytes per socket write when a body is streamed from a file (urllib3 defaults to 16 KiB)."""


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs to know about one platform connection.

    :param platform: display name used in messages (``"Anaplan"``).
    :param base_url: prefix for relative paths.
    :param auth: a token scheme, static headers, or None.
    :param policy: retry policy.
    :param status_hints: per-status advice appended to error messages.
    :param timeout: (connect, read) seconds for every request.
    :param verify: TLS verification (bool or CA bundle path).
    :param csrf_fetch_path: when set, writes carry an ``X-CSRF-Token`` fetched from this path.
    :param client_cert: (certificate file, key file) for mutual TLS.
    :param pool_size: connections kept per host (raise it for parallel transfers).
    :param requests_per_minute: the tenant's request budget shared by the whole process (see
        :mod:`.rate_budget`); None sends without one.
    """

    platform: str
    base_url: str
    auth: AuthScheme | StaticHeaderAuth | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    status_hints: Mapping[int, str] = field(default_factory=dict)
    timeout: tuple[float, float] = (10.0, 120.0)
    verify: bool | str = True
    csrf_fetch_path: str | None = None
    client_cert: tuple[str, str] | None = None
    pool_size: int = 10
    requests_per_minute: float | None = None

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


class _StreamingAdapter(HTTPAdapter):
    """Sends streamed bodies in 1 MiB writes instead of 16 KiB ones (fewer syscalls per chunk)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blocksize", SEND_BLOCK_SIZE)
        super().init_poolmanager(*args, **kwargs)


class HttpClient:
    """A ``requests`` session wrapped with the provider's retry, token, CSRF and error rules."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        token_cache: TokenCache = TOKEN_CACHE,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self.policy = TransportPolicy.of(config)
        self._tokens = token_cache
        self._sleep = sleep or _sleep
        self._session: requests.Session | None = None
        self._session_lock = threading.Lock()
        self._csrf_token: str | None = None
        self._csrf_lock = threading.Lock()

    # -- session ------------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        with self._session_lock:
            if self._session is None:
                session = requests.Session()
                adapter = _StreamingAdapter(pool_connections=4, pool_maxsize=self.config.pool_size)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                session.headers["User-Agent"] = USER_AGENT
                session.verify = self.config.verify
                if self.config.client_cert:
                    session.cert = self.config.client_cert
                self._session = session
            return self._session

    def close(self) -> None:
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    # -- public API ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
        expect_data: bool = True,
    ) -> requests.Response:
        """Send one logical request; retried, authenticated and checked.

        :param data: the body; a zero-argument callable returning a fresh body (e.g. a file slice) is
            called once per attempt, so retries can stream from disk instead of holding bytes.
        :param idempotent: whether the request can be sent twice safely; defaults by method.
            Pass ``False`` for calls that start remote work.
        :param expect_data: the answer must be data (JSON or bytes); an HTML page is a login page.
        :return: the successful response (streamed when ``stream``; the caller closes it).
        """
        exchange = self.policy.exchange(
            method,
            self.config.url(path),
            idempotent=idempotent,
            expect_data=expect_data,
            params=params,
            json=json,
            data=data,
            extra_headers=headers,
        )
        return self._with_retries(exchange, stream=stream)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        return _json(response, self.policy)

    def post_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("POST", path, **kwargs)
        return _json(response, self.policy)

    def stream_bytes(self, path: str, *, chunk_size: int = 1024 * 1024, **kwargs: Any) -> Iterator[bytes]:
        """Yield a response body in pieces of at most ``chunk_size`` bytes, never holding all of it."""
        response = self.request("GET", path, stream=True, **kwargs)
        try:
            yield from response.iter_content(chunk_size=chunk_size)
        finally:
            response.close()

    def token(self) -> Token:
        """The current token for this connection (fetched or renewed if needed)."""
        return self._token()

    # -- retries ------------------------------------------------------------------------------

    def _with_retries(self, exchange: Exchange, *, stream: bool) -> requests.Response:
        retrying = tenacity.Retrying(**self.policy.retrying(exchange.method, exchange.url, self._sleep))
        try:
            return retrying(self._attempt, exchange, stream=stream)
        except RetryableFailure as failure:
            raise self.policy.exhausted(failure.error) from None

    def _attempt(self, exchange: Exchange, *, stream: bool) -> requests.Response:
        """One attempt: send, and replay once after a token renewal or a CSRF refetch if told to."""
        exchange = exchange.attempt()
        data = exchange.data
        while True:
            request_headers = exchange.headers(
                token=self._token() if exchange.needs_token else None,
                csrf=self._csrf(refresh=False) if exchange.needs_csrf else None,
            )
            body = data() if callable(data) else data
            delay = self.policy.send_delay(exchange.url)
            if delay:
                self._sleep(delay)
            try:
                response = self.session.request(
                    exchange.method,
                    exchange.url,
                    params=exchange.params,
                    json=exchange.json,
                    data=body,
                    headers=request_headers,
                    stream=stream,
                    timeout=self.config.timeout,
                    cert=exchange.client_cert,
                )
            except requests.exceptions.RequestException as exc:
                raise exchange.network_failure(exc, unsent=is_unsent_connection_error(exc)) from exc
            finally:
                if body is not data and hasattr(body, "close"):
                    body.close()
            step = exchange.judge(
                response.status_code,
                response.headers,
                error_body=partial(_error_body, response),
                body_peek=partial(_body_peek, response),
                discard=response.close,
            )
            if step is Step.RENEW_TOKEN:
                self._tokens.discard(self.policy.auth.cache_key, exchange.token.value)
            elif step is Step.REFETCH_CSRF:
                self._csrf(refresh=True)
            else:
                return response

    # -- tokens -------------------------------------------------------------------------------

    def _token(self) -> Token:
        auth = self.config.auth
        assert auth is not None and not isinstance(auth, StaticHeaderAuth)
        key = auth.cache_key
        current = self._tokens.get(key)
        if self.policy.reusable(current):
            return current  # type: ignore[return-value]
        with self._tokens.thread_lock(key):
            current = self._tokens.get(key)
            if self.policy.reusable(current):
                return current  # type: ignore[return-value]
            for spec, is_refresh in self.policy.token_requests(current):
                try:
                    fresh = self._fetch_token(spec)
                    break
                except AuthenticationError as err:
                    if not is_refresh:
                        raise
                    self.policy.refresh_failed(err)
            self._tokens.put(key, fresh)
            return fresh

    def _fetch_token(self, spec: Any) -> Token:
        auth = self.config.auth
        assert auth is not None and not isinstance(auth, StaticHeaderAuth)
        try:
            response = self._with_retries(self.policy.token_exchange(spec), stream=False)
        except SapplanError as err:
            raise self.policy.token_rejected(spec.url, err) from None
        token = auth.parse_token(_json(response, self.policy))
        _mask(token.value)
        return token

    # -- CSRF ---------------------------------------------------------------------------------

    def _csrf(self, *, refresh: bool) -> str:
        with self._csrf_lock:
            if self._csrf_token is None or refresh:
                assert self.config.csrf_fetch_path is not None
                response = self.request(
                    "GET", self.config.csrf_fetch_path, headers=self.policy.csrf_fetch_headers(), expect_data=False
                )
                response.close()
                token = self.policy.csrf_token(response.headers)
                _mask(token)
                self._csrf_token = token
            return self._csrf_token


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _json(response: requests.Response, policy: TransportPolicy) -> Any:
    if response.status_code == 204 or not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise policy.not_json(response.request.method or "", response.url, response.status_code) from None


def _error_body(response: requests.Response) -> bytes:
    return b"" if _is_stream_consumed(response) else response.content


def _body_peek(response: requests.Response) -> bytes | None:
    """The first bytes of a body already read; None for a streamed body not read yet."""
    if response.raw is not None and not response._content_consumed:  # type: ignore[attr-defined]
        return None
    return response.content[:200]


def _is_stream_consumed(response: requests.Response) -> bool:
    return bool(getattr(response, "_content_consumed", False)) and response._content is False  # type: ignore[attr-defined]


_path_of = path_of  # kept for callers of the old private name


def _mask(secret: str) -> None:
    """Register a secret with Airflow's log masker (only outside an event loop: it may block)."""
    import asyncio

    try:
        asyncio.get_running_loop()
        return
    except RuntimeError:
        pass
    try:
        from airflow_provider_sapplan._compat import mask_secret

        mask_secret(secret)
    except Exception:  # masking must never break a request
        log.debug("Could not register a secret with the log masker.", exc_info=True)
