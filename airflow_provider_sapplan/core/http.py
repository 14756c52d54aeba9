"""The synchronous HTTP client every hook uses: session, timeouts, retries, tokens, CSRF, errors.

This module (with :mod:`.async_http` for triggers) is the only place in the package where a
request is retried, a token is fetched or renewed, a CSRF token is handled or an HTTP status is
turned into an exception. Platform hooks describe endpoints; they never loop on failures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import tenacity
from requests.adapters import HTTPAdapter

from airflow_provider_sapplan import __version__
from airflow_provider_sapplan.core.auth import TOKEN_CACHE, AuthScheme, StaticHeaderAuth, Token, TokenCache
from airflow_provider_sapplan.core.errors import is_html_response, login_page_error, map_http_error
from airflow_provider_sapplan.core.retry import (
    RetryableFailure,
    RetryPolicy,
    is_unsent_connection_error,
    server_requested_delay,
)
from airflow_provider_sapplan.exceptions import AuthenticationError, NetworkError, SapplanError

log = logging.getLogger(__name__)

USER_AGENT = f"airflow-provider-sapplan/{__version__}"
SEND_BLOCK_SIZE = 1024 * 1024
"""Bytes per socket write when a body is streamed from a file (urllib3 defaults to 16 KiB)."""
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


def default_idempotency(method: str) -> bool:
    return method.upper() in IDEMPOTENT_METHODS


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
        method = method.upper()
        url = self.config.url(path)
        safe_to_repeat = default_idempotency(method) if idempotent is None else idempotent

        def attempt() -> requests.Response:
            return self._attempt(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=headers,
                stream=stream,
                idempotent=safe_to_repeat,
                expect_data=expect_data,
                use_auth=True,
            )

        return self._with_retries(method, url, attempt)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        return _json(response, self.config.platform)

    def post_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("POST", path, **kwargs)
        return _json(response, self.config.platform)

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

    def _with_retries(self, method: str, url: str, attempt: Callable[[], requests.Response]) -> requests.Response:
        policy = self.config.policy
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.max_attempts),
            wait=_tenacity_wait(policy),
            retry=tenacity.retry_if_exception_type(RetryableFailure),
            sleep=self._sleep,
            before_sleep=_log_retry(self.config.platform, method, url),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except RetryableFailure as failure:
            raise failure.error from None

    def _attempt(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Any,
        headers: Mapping[str, str] | None,
        stream: bool,
        idempotent: bool,
        expect_data: bool,
        use_auth: bool,
        cert: tuple[str, str] | None = None,
    ) -> requests.Response:
        auth = self.config.auth if use_auth else None
        renewed_token = False
        refetched_csrf = False
        while True:
            request_headers = {"Accept": "application/json", **(headers or {})}
            token: Token | None = None
            if isinstance(auth, StaticHeaderAuth):
                request_headers.update(auth.headers())
            elif auth is not None:
                token = self._token()
                request_headers.update(auth.authorization_header(token))
            if use_auth and self.config.csrf_fetch_path and method in WRITE_METHODS:
                request_headers["X-CSRF-Token"] = self._csrf(refresh=False)
            body = data() if callable(data) else data
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=body,
                    headers=request_headers,
                    stream=stream,
                    timeout=self.config.timeout,
                    cert=cert,
                )
            except requests.exceptions.RequestException as exc:
                error = NetworkError(
                    f"{self.config.platform} {method} {_path_of(url)} could not complete: "
                    f"{type(exc).__name__}. Check the connection's host and the network path to it.",
                    platform=self.config.platform,
                )
                if idempotent or is_unsent_connection_error(exc):
                    raise RetryableFailure(error) from exc
                raise error from exc
            finally:
                if body is not data and hasattr(body, "close"):
                    body.close()

            status = response.status_code
            if status == 401 and token is not None and not renewed_token:
                # The token was revoked or expired early: renew once and replay.
                response.close()
                self._tokens.discard(auth.cache_key, token.value)  # type: ignore[union-attr]
                renewed_token = True
                continue
            if (
                status == 403
                and self.config.csrf_fetch_path
                and response.headers.get("x-csrf-token", "").lower() == "required"
                and not refetched_csrf
            ):
                response.close()
                self._csrf(refresh=True)
                refetched_csrf = True
                continue
            return self._check(method, url, response, idempotent=idempotent, expect_data=expect_data)

    def _check(
        self, method: str, url: str, response: requests.Response, *, idempotent: bool, expect_data: bool
    ) -> requests.Response:
        status = response.status_code
        policy = self.config.policy
        if status >= 400:
            body = response.content if not _is_stream_consumed(response) else b""
            response.close()
            error = map_http_error(
                platform=self.config.platform,
                method=method,
                url=url,
                status=status,
                body=body,
                hints=self.config.status_hints,
            )
            if policy.should_retry_status(status, idempotent=idempotent):
                raise RetryableFailure(error, server_requested_delay(response.headers))
            raise error
        if expect_data and status != 204 and _peek_is_html(response):
            response.close()
            raise login_page_error(self.config.platform, method, url)
        return response

    # -- tokens -------------------------------------------------------------------------------

    def _token(self) -> Token:
        auth = self.config.auth
        assert auth is not None and not isinstance(auth, StaticHeaderAuth)
        key = auth.cache_key
        current = self._tokens.get(key)
        if current is not None and not current.needs_renewal():
            return current
        with self._tokens.thread_lock(key):
            current = self._tokens.get(key)
            if current is not None and not current.needs_renewal():
                return current
            fresh: Token | None = None
            if current is not None and not current.expired():
                refresh = auth.refresh_request(current)
                if refresh is not None:
                    try:
                        fresh = self._fetch_token(refresh)
                    except AuthenticationError as err:
                        log.info("%s token refresh failed (%s); logging in again.", auth.platform, err)
            if fresh is None:
                fresh = self._fetch_token(auth.authenticate_request())
            self._tokens.put(key, fresh)
            return fresh

    def _fetch_token(self, spec: Any) -> Token:
        auth = self.config.auth
        assert auth is not None and not isinstance(auth, StaticHeaderAuth)

        def attempt() -> requests.Response:
            return self._attempt(
                spec.method,
                spec.url,
                params=None,
                json=spec.json,
                data=spec.data,
                headers=spec.headers,
                stream=False,
                idempotent=True,
                expect_data=True,
                use_auth=False,
                cert=spec.client_cert,
            )

        try:
            response = self._with_retries(spec.method, spec.url, attempt)
        except SapplanError as err:
            if err.status_code in (400, 401, 403):
                raise AuthenticationError(
                    f"{self.config.platform} rejected the credentials at {_path_of(spec.url)} "
                    f"(HTTP {err.status_code}). Check the connection's login and password, client id "
                    "and secret, or certificate and key, and that the user is not locked or SSO-only.",
                    platform=self.config.platform,
                    status_code=err.status_code,
                ) from None
            raise
        token = auth.parse_token(_json(response, self.config.platform))
        _mask(token.value)
        return token

    # -- CSRF ---------------------------------------------------------------------------------

    def _csrf(self, *, refresh: bool) -> str:
        with self._csrf_lock:
            if self._csrf_token is None or refresh:
                assert self.config.csrf_fetch_path is not None
                response = self.request(
                    "GET", self.config.csrf_fetch_path, headers={"X-CSRF-Token": "Fetch"}, expect_data=False
                )
                response.close()
                token = response.headers.get("x-csrf-token")
                if not token:
                    raise AuthenticationError(
                        f"{self.config.platform} did not return a CSRF token from "
                        f"{self.config.csrf_fetch_path}; check the user's roles and the API URL.",
                        platform=self.config.platform,
                    )
                _mask(token)
                self._csrf_token = token
            return self._csrf_token


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _tenacity_wait(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        delay = failure.server_delay if isinstance(failure, RetryableFailure) else None
        return policy.wait_for(state.attempt_number, delay)

    return wait


def _log_retry(platform: str, method: str, url: str) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s %s %s: attempt %d failed (%s); retrying in %.1fs.",
            platform,
            method,
            _path_of(url),
            state.attempt_number,
            failure,
            wait,
        )

    return before_sleep


def _json(response: requests.Response, platform: str) -> Any:
    if response.status_code == 204 or not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise SapplanError(
            f"{platform} answered {response.request.method} {_path_of(response.url)} with a body that is "
            "not JSON; check that the connection points at the API URL.",
            platform=platform,
            status_code=response.status_code,
        ) from None


def _peek_is_html(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "").lower()
    if "text/html" in content_type:
        return True
    if "json" in content_type or "octet-stream" in content_type or "gzip" in content_type:
        return False
    if response.raw is not None and not response._content_consumed:  # type: ignore[attr-defined]
        # Streamed body of unknown type: judge by the content type alone.
        return False
    return is_html_response(response.headers, response.content[:200])


def _is_stream_consumed(response: requests.Response) -> bool:
    return bool(getattr(response, "_content_consumed", False)) and response._content is False  # type: ignore[attr-defined]


def _path_of(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path or url


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
