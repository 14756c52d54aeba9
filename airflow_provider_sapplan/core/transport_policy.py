"""The transport decisions, written once for the sync (:mod:`.http`) and async (:mod:`.async_http`) clients.

Everything here is pure: given a method, an attempt's status, headers and the start of its body (or
the kind of exception it raised), it says what happens next: hand the response back, renew the token
and replay once, fetch a new CSRF token and replay once, retry later (and how much later), or fail
with which error. The clients only do I/O: they send what :class:`Exchange` tells them to, and act on
its answer. A rule changed here changes for both clients at once.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import tenacity

from airflow_provider_sapplan.core.auth import StaticHeaderAuth, Token, TokenRequest
from airflow_provider_sapplan.core.errors import (
    URL_FIELDS_HINT_KEY,
    after_retries,
    is_html_response,
    login_page_error,
    map_http_error,
    network_error,
    token_endpoint_error,
)
from airflow_provider_sapplan.core.rate_budget import BUDGETS
from airflow_provider_sapplan.core.redaction import credentials_in_body, credentials_in_headers
from airflow_provider_sapplan.core.retry import RetryableFailure, RetryPolicy, server_requested_delay
from airflow_provider_sapplan.exceptions import AuthenticationError, NetworkError, SapplanError

if TYPE_CHECKING:
    from airflow_provider_sapplan.core.http import ClientConfig

log = logging.getLogger("airflow_provider_sapplan.core.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Content types whose body is data by declaration: never judged a login page by its first bytes.
DATA_CONTENT_TYPES = ("json", "octet-stream", "gzip")


def default_idempotency(method: str) -> bool:
    """Whether a method may be sent twice safely when the caller does not say."""
    return method.upper() in IDEMPOTENT_METHODS


class Step(enum.Enum):
    """What a client does with one attempt's response."""

    RETURN = "return"  #: hand the response to the caller
    RENEW_TOKEN = "renew_token"  #: drop the rejected token, fetch another, replay the request once
    REFETCH_CSRF = "refetch_csrf"  #: fetch a new CSRF token, replay the request once


MAX_TOKEN_RENEWALS = 3
"""Token renewals one attempt may make when every replay meets a 401 with a token older than the first."""


@dataclass
class Exchange:
    """The decisions for one logical request, across its token/CSRF replays within one attempt.

    :param policy: the connection's transport policy.
    :param method: upper-case HTTP method.
    :param url: absolute URL (only its path ever reaches a message).
    :param idempotent: whether sending it twice is safe (decides what is retried).
    :param expect_data: the answer must be data; an HTML page on 2xx is a login page.
    :param use_auth: False for token endpoint calls (no token, no CSRF).
    :param params: query parameters; ``json``/``data``: the body; ``extra_headers``: the caller's
        headers; ``client_cert``: a (certificate, key) pair for this call alone (x509 token requests).
    """

    policy: TransportPolicy = field(repr=False)
    method: str
    url: str
    idempotent: bool
    expect_data: bool = True
    use_auth: bool = True
    params: Mapping[str, Any] | None = None
    json: Any = field(default=None, repr=False)  # bodies and headers may carry secrets
    data: Any = field(default=None, repr=False)
    extra_headers: Mapping[str, str] | None = field(default=None, repr=False)
    client_cert: tuple[str, str] | None = None
    csrf_fetch: bool = False
    token: Token | None = field(default=None, repr=False)
    token_renewals: int = 0
    first_rejection_at: float | None = None
    refetched_csrf: bool = False

    def attempt(self) -> Exchange:
        """The same request's decisions for a new attempt: one token renewal and one CSRF refetch each."""
        return replace(self, token=None, token_renewals=0, first_rejection_at=None, refetched_csrf=False)

    @property
    def needs_token(self) -> bool:
        """Whether this request carries a bearer-style token the client must obtain first."""
        auth = self.policy.auth if self.use_auth else None
        return auth is not None and not isinstance(auth, StaticHeaderAuth)

    @property
    def needs_csrf(self) -> bool:
        """Writes to a platform with a CSRF fetch path carry ``X-CSRF-Token``."""
        return bool(self.use_auth and self.policy.csrf_fetch_path and self.method in WRITE_METHODS)

    @property
    def session_bound(self) -> bool:
        """Whether the request needs the client's own cookie session: the CSRF fetch (``csrf_fetch``) and
        the writes that carry its token, which the platform binds to the session cookie of the fetch.
        Everything else may share a connection pool without cookies."""
        return self.csrf_fetch or self.needs_csrf

    def headers(self, *, token: Token | None = None, csrf: str | None = None) -> dict[str, str]:
        """The headers of the next send: JSON accepted, the caller's, then auth and CSRF."""
        headers = {"Accept": "application/json", **(self.extra_headers or {})}
        auth = self.policy.auth if self.use_auth else None
        self.token = token
        if isinstance(auth, StaticHeaderAuth):
            headers.update(auth.headers())
        elif auth is not None and token is not None:
            headers.update(auth.authorization_header(token))
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        return headers

    def _may_renew(self, rejected: Token) -> bool:
        """Whether a 401 is worth a token renewal and replay rather than the final answer.

        The first 401 is: the token was revoked or expired early. After that, only a token issued after
        the first rejection is a verdict on the credentials; an older one (another hook's renewal, put in
        the process-wide cache just before a tenant-wide invalidation) is just as dead, so it is renewed
        again, at most :data:`MAX_TOKEN_RENEWALS` times per attempt.
        """
        if self.first_rejection_at is None:
            self.first_rejection_at = time.time()
            return True
        return rejected.issued_at < self.first_rejection_at and self.token_renewals < MAX_TOKEN_RENEWALS

    def sent_credentials(self) -> list[str]:
        """What this request carried as credentials: auth headers, and a token request's whole body.

        Blanked out of error messages quoting the answer (:mod:`.redaction`), for servers that echo it.
        """
        sent = credentials_in_headers(self.extra_headers)
        auth = self.policy.auth if self.use_auth else None
        if isinstance(auth, StaticHeaderAuth):
            sent += credentials_in_headers(auth.headers())
        elif auth is not None and self.token is not None:
            sent += credentials_in_headers(auth.authorization_header(self.token))
        if not self.use_auth:  # a token request: its form or JSON is credentials and grant parameters
            sent += credentials_in_body(self.data, self.json)
        return sent

    def network_failure(self, exc: BaseException, *, unsent: bool) -> Exception:
        """The exception to raise for a send that failed without an answer.

        Retried when the request is idempotent or provably never reached the server (``unsent``); a
        read timeout after a non-idempotent send is not retried, so remote work never starts twice.
        """
        error = network_error(self.policy.platform, self.method, self.url, exc, self.policy.url_fields)
        if self.idempotent or unsent:
            return RetryableFailure(error)
        return error

    def judge(
        self,
        status: int,
        headers: Mapping[str, str],
        *,
        error_body: Callable[[], bytes],
        body_peek: Callable[[], bytes | None],
        discard: Callable[[], None] = lambda: None,
    ) -> Step:
        """Decide what the client does with an answer; raises the error (retryable or final) itself.

        :param error_body: reads the body of an error answer (called only for status >= 400).
        :param body_peek: the first bytes of a 2xx body, or None when the body is not read yet
            (a streamed download): then only its content type can reveal a login page.
        :param discard: releases the answer; called before any step other than :attr:`Step.RETURN`.
        """
        if status == 401 and self.token is not None and self._may_renew(self.token):
            discard()
            self.token_renewals += 1
            return Step.RENEW_TOKEN
        if (
            status == 403
            and self.policy.csrf_fetch_path
            and _header(headers, "x-csrf-token").lower() == "required"
            and not self.refetched_csrf
        ):
            discard()
            self.refetched_csrf = True
            return Step.REFETCH_CSRF
        if status >= 400:
            body = error_body()
            discard()
            error = map_http_error(
                platform=self.policy.platform,
                method=self.method,
                url=self.url,
                status=status,
                body=body,
                hints=self.policy.status_hints,
                sent_credentials=self.sent_credentials(),
            )
            if self.policy.retry.should_retry_status(status, idempotent=self.idempotent):
                retry_after = server_requested_delay(headers)
                if status == 429:
                    self.policy.rate_limited(self.url, retry_after)
                raise RetryableFailure(error, retry_after)
            raise error
        if self.expect_data and status != 204 and is_login_page(headers, body_peek):
            discard()
            raise login_page_error(self.policy.platform, self.method, self.url, self.policy.url_fields)
        return Step.RETURN


@dataclass(frozen=True)
class TransportPolicy:
    """One connection's transport rules (from its :class:`~.http.ClientConfig`)."""

    platform: str
    auth: Any
    retry: RetryPolicy
    status_hints: Mapping[int, str]
    csrf_fetch_path: str | None
    requests_per_minute: float | None = None

    @classmethod
    def of(cls, config: ClientConfig) -> TransportPolicy:
        return cls(
            platform=config.platform,
            auth=config.auth,
            retry=config.policy,
            status_hints=config.status_hints,
            csrf_fetch_path=config.csrf_fetch_path,
            requests_per_minute=config.requests_per_minute,
        )

    # -- the tenant's request budget ----------------------------------------------------------

    def send_delay(self, url: str) -> float:
        """Seconds to wait before sending to ``url`` so the process stays within the tenant's budget."""
        if not self.requests_per_minute:
            return 0.0
        return BUDGETS.for_tenant(self.platform, url, self.requests_per_minute).reserve()

    def rate_limited(self, url: str, retry_after: float | None) -> None:
        """A 429: everybody in this process sharing the tenant's budget backs off together."""
        if self.requests_per_minute:
            budget = BUDGETS.for_tenant(self.platform, url, self.requests_per_minute)
            wait = retry_after if retry_after is not None else budget.interval * budget.burst
            budget.back_off(min(wait, self.retry.max_wait))  # the same cap as the retry's own wait

    def exchange(self, method: str, url: str, *, idempotent: bool | None, **call: Any) -> Exchange:
        """The decisions for one caller request (``call``: the other :class:`Exchange` fields)."""
        method = method.upper()
        safe = default_idempotency(method) if idempotent is None else idempotent
        return Exchange(self, method, url, safe, **call)

    def token_exchange(self, spec: TokenRequest) -> Exchange:
        """A token endpoint call: no token or CSRF of its own, always safe to repeat."""
        return self.exchange(
            spec.method,
            spec.url,
            idempotent=True,
            use_auth=False,
            json=spec.json,
            data=spec.data,
            extra_headers=spec.headers,
            client_cert=spec.client_cert,
        )

    def retry_wait(self, attempt: int, failure: RetryableFailure, method: str, url: str) -> float | None:
        """After failed attempt ``attempt`` (1-based): the seconds to wait before the next one (logged), or
        None when every attempt is used up.

        The same decisions as :meth:`retrying` (stop, wait, log line), for a client that runs its own
        attempt loop: the async client's first attempt then builds no retry controller at all (a
        ``tenacity.AsyncRetrying`` cost about 40 us per poll, most of it for the attempt that succeeds).
        """
        if attempt >= self.retry.max_attempts:
            return None
        wait = self.retry.wait_for(attempt, failure.server_delay)
        log.warning(
            "%s %s %s: attempt %d failed (%s); retrying in %.1fs.",
            self.platform,
            method,
            path_of(url),
            attempt,
            failure,
            wait,
        )
        return wait

    def retrying(self, method: str, url: str, sleep: Callable[[float], Any]) -> dict[str, Any]:
        """Keyword arguments for ``tenacity.Retrying`` / ``AsyncRetrying``: attempts, waits, logging."""
        return {
            "stop": tenacity.stop_after_attempt(self.retry.max_attempts),
            "wait": _tenacity_wait(self.retry),
            "retry": tenacity.retry_if_exception_type(RetryableFailure),
            "sleep": sleep,
            "before_sleep": _log_retry(self.platform, method, url),
            "reraise": True,
        }

    # -- tokens --------------------------------------------------------------------------------

    @staticmethod
    def reusable(token: Token | None) -> bool:
        """A cached token is used as is until it is due for renewal."""
        return token is not None and not token.needs_renewal()

    def token_requests(self, current: Token | None) -> Iterator[tuple[TokenRequest, bool]]:
        """Token endpoint calls to try in order, each with whether it is a refresh.

        A refresh comes first while the old token still lives; if it fails with an
        :class:`AuthenticationError` the client logs :meth:`refresh_failed` and goes on to a login,
        which is built only when it is needed. A failed login is raised.
        """
        if current is not None and not current.expired():
            refresh = self.auth.refresh_request(current)
            if refresh is not None:
                yield refresh, True
        yield self.auth.authenticate_request(), False

    def refresh_failed(self, err: AuthenticationError) -> None:
        log.info("%s token refresh failed (%s); logging in again.", self.auth.platform, err)

    def token_rejected(self, url: str, err: SapplanError) -> SapplanError:
        """The error for a token endpoint call that failed: credentials (400/401/403) or a wrong login URL."""
        if isinstance(err, NetworkError):
            return err
        return token_endpoint_error(self.auth, self.platform, url, err, self.url_fields)

    def exhausted(self, error: SapplanError) -> SapplanError:
        """The final error once every attempt failed: the retry-dependent hint is added only here."""
        return after_retries(error, self.retry.max_attempts)

    @property
    def url_fields(self) -> str:
        """The connection fields that hold this platform's URLs, for hints (set by the hook)."""
        return str(self.status_hints.get(URL_FIELDS_HINT_KEY, "") or "")

    # -- CSRF ----------------------------------------------------------------------------------

    def csrf_fetch_headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": "Fetch"}

    def csrf_token(self, headers: Mapping[str, str]) -> str:
        """The CSRF token of a fetch answer, or an error naming what to check."""
        token = _header(headers, "x-csrf-token")
        if not token:
            raise AuthenticationError(
                f"{self.platform} did not return a CSRF token from "
                f"{self.csrf_fetch_path}; check the user's roles and the API URL.",
                platform=self.platform,
            )
        return token

    # -- bodies --------------------------------------------------------------------------------

    def not_json(self, method: str, url: str, status: int) -> SapplanError:
        return SapplanError(
            f"{self.platform} answered {method} {path_of(url)} with a body that is "
            "not JSON; check that the connection points at the API URL.",
            platform=self.platform,
            status_code=status,
        )


def is_login_page(headers: Mapping[str, str], body_peek: Callable[[], bytes | None]) -> bool:
    """An HTML page where data was expected: by content type, else by the body's first bytes."""
    content_type = _header(headers, "content-type").lower()
    if "text/html" in content_type:
        return True
    if any(kind in content_type for kind in DATA_CONTENT_TYPES):
        return False
    peek = body_peek()
    if peek is None:  # not read yet (streamed): judge by the content type alone
        return False
    return is_html_response(headers, peek[:200])


def path_of(url: str) -> str:
    """A URL's path, for messages (never its query string)."""
    return urlsplit(url).path or url


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


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
            path_of(url),
            state.attempt_number,
            failure,
            wait,
        )

    return before_sleep
