"""The transport decisions both HTTP clients consult, tested without any I/O."""

from __future__ import annotations

import time

import pytest

from airflow_provider_sapplan.core.auth import Token
from airflow_provider_sapplan.core.http import ClientConfig
from airflow_provider_sapplan.core.retry import RetryableFailure
from airflow_provider_sapplan.core.transport_policy import Step, TransportPolicy
from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
)


class FakeAuth:
    platform = "Fake"
    cache_key = "k"

    def authorization_header(self, token: Token) -> dict[str, str]:
        return {"Authorization": f"Bearer {token.value}"}


def policy(csrf: str | None = None) -> TransportPolicy:
    return TransportPolicy.of(ClientConfig("Fake", "https://h/api", auth=FakeAuth(), csrf_fetch_path=csrf))  # type: ignore[arg-type]


TOKEN = Token(value="secret", expires_at=time.time() + 3600)


def judge(exchange, status, headers=None, body=b"{}", peek=b"{}", discarded=None):  # type: ignore[no-untyped-def]
    return exchange.judge(
        status,
        headers or {"Content-Type": "application/json"},
        error_body=lambda: body,
        body_peek=lambda: peek,
        discard=lambda: discarded.append(True) if discarded is not None else None,
    )


def test_401_renews_the_token_once_per_attempt() -> None:
    exchange = policy().exchange("get", "https://h/api/x", idempotent=None).attempt()
    exchange.headers(token=TOKEN)
    discarded: list[bool] = []
    assert judge(exchange, 401, discarded=discarded) is Step.RENEW_TOKEN
    assert discarded == [True]
    exchange.headers(token=Token(value="renewed", expires_at=time.time() + 3600, issued_at=time.time() + 1))
    with pytest.raises(AuthenticationError):
        judge(exchange, 401)
    assert judge(exchange.attempt(), 200) is Step.RETURN


def test_a_replayed_token_older_than_the_rejection_is_renewed_again() -> None:
    """Tokens invalidated together (a tenant-wide logout, an IdP key roll): the cache may hand the replay
    another process-wide token issued before the rejection, which is just as dead. Only a token issued
    after the first rejection proves that the credentials themselves are refused."""
    exchange = policy().exchange("GET", "https://h/api/x", idempotent=None).attempt()
    exchange.headers(token=Token(value="t1", expires_at=time.time() + 3600, issued_at=time.time() - 60))
    assert judge(exchange, 401) is Step.RENEW_TOKEN
    other = Token(value="t-other", expires_at=time.time() + 3600, issued_at=time.time() - 30)
    exchange.headers(token=other)
    assert judge(exchange, 401) is Step.RENEW_TOKEN, "a token older than the 401 is no verdict"
    exchange.headers(token=Token(value="t2", expires_at=time.time() + 3600, issued_at=time.time() + 1))
    with pytest.raises(AuthenticationError):
        judge(exchange, 401)


def test_renewals_are_bounded_even_if_only_old_tokens_come_back() -> None:
    exchange = policy().exchange("GET", "https://h/api/x", idempotent=None).attempt()
    old = Token(value="t1", expires_at=time.time() + 3600, issued_at=time.time() - 60)
    steps = []
    with pytest.raises(AuthenticationError):
        for _ in range(10):
            exchange.headers(token=old)
            steps.append(judge(exchange, 401))
    assert steps == [Step.RENEW_TOKEN] * 3


def test_403_with_csrf_required_refetches_once_and_only_with_a_fetch_path() -> None:
    headers = {"x-csrf-token": "Required"}
    exchange = policy(csrf="/").exchange("POST", "https://h/api/x", idempotent=False).attempt()
    assert exchange.needs_csrf
    assert judge(exchange, 403, headers) is Step.REFETCH_CSRF
    with pytest.raises(PermissionDeniedError):
        judge(exchange, 403, headers)
    assert not policy().exchange("POST", "https://h/api/x", idempotent=False).needs_csrf


def test_retry_depends_on_status_and_idempotency() -> None:
    get = policy().exchange("GET", "https://h/api/x", idempotent=None)
    with pytest.raises(RetryableFailure) as failure:
        judge(get, 503, {"Retry-After": "7"})
    assert failure.value.server_delay == 7.0
    assert isinstance(failure.value.error, ServiceUnavailableError)
    # A gateway's or platform's transient 500 is retried when sending twice is safe (reads, PUTs,
    # token requests): the fault soak met them on every platform.
    with pytest.raises(RetryableFailure):
        judge(get, 500)
    post = policy().exchange("POST", "https://h/api/x", idempotent=None)
    for status in (500, 502):  # may have acted on a POST: never retried
        with pytest.raises(ServiceUnavailableError):
            judge(post, status)
    with pytest.raises(NotFoundError, match="HTTP 404"):
        judge(get, 404, body=b'{"message": "no such task"}')


def test_html_on_200_is_a_login_page_unless_the_body_is_declared_data_or_unread() -> None:
    exchange = policy().exchange("GET", "https://h/api/x", idempotent=None)
    with pytest.raises(AuthenticationError, match="HTML page"):
        judge(exchange, 200, {"Content-Type": "text/html"})
    with pytest.raises(AuthenticationError, match="HTML page"):
        judge(exchange, 200, {"Content-Type": "text/plain"}, peek=b"<!DOCTYPE html><html>")
    assert judge(exchange, 200, {"Content-Type": "application/octet-stream"}, peek=b"<html>") is Step.RETURN
    assert judge(exchange, 200, {}, peek=None) is Step.RETURN  # streamed, not read yet
    assert judge(exchange, 204, {"Content-Type": "text/html"}) is Step.RETURN
    no_data = policy().exchange("GET", "https://h/api/x", idempotent=None, expect_data=False)
    assert judge(no_data, 200, {"Content-Type": "text/html"}) is Step.RETURN


def test_network_failures_are_retried_only_when_safe() -> None:
    error = ConnectionError("boom")
    get = policy().exchange("GET", "https://h/api/x?token=s", idempotent=None)
    assert isinstance(get.network_failure(error, unsent=False), RetryableFailure)
    post = policy().exchange("POST", "https://h/api/x", idempotent=None)
    final = post.network_failure(error, unsent=False)
    assert isinstance(final, NetworkError) and "/api/x" in final.message
    assert isinstance(post.network_failure(error, unsent=True), RetryableFailure)


def test_headers_carry_auth_and_never_leak_between_attempts() -> None:
    exchange = policy(csrf="/").exchange(
        "PUT", "https://h/api/x", idempotent=None, extra_headers={"X-A": "1"}, data={"client_secret": "pw-xyz"}
    )
    headers = exchange.headers(token=TOKEN, csrf="c")
    assert headers == {"Accept": "application/json", "X-A": "1", "Authorization": "Bearer secret", "X-CSRF-Token": "c"}
    assert exchange.attempt().token is None
    assert "secret" not in repr(exchange) and "pw-xyz" not in repr(exchange)


def test_retry_wait_follows_the_policy_and_stops_after_the_last_attempt(caplog: pytest.LogCaptureFixture) -> None:
    rules = policy()
    failure = RetryableFailure(ServiceUnavailableError("busy", platform="Fake"), server_delay=7.0)
    assert rules.retry_wait(1, failure, "GET", "https://h/api/x?secret=1") == 7.0
    assert "Fake GET /api/x: attempt 1 failed (busy); retrying in 7.0s." in caplog.text
    assert "secret" not in caplog.text
    backoff = rules.retry_wait(2, RetryableFailure(ServiceUnavailableError("busy", platform="Fake")), "GET", "u")
    assert backoff is not None and 1.0 <= backoff <= 2.0
    assert rules.retry_wait(rules.retry.max_attempts, failure, "GET", "u") is None


def test_only_the_csrf_fetch_and_csrf_writes_are_bound_to_the_cookie_session() -> None:
    rules = policy(csrf="/")
    assert not rules.exchange("GET", "https://h/api/x", idempotent=None).session_bound
    assert rules.exchange("GET", "https://h/api/", idempotent=True, csrf_fetch=True).session_bound
    assert rules.exchange("POST", "https://h/api/x", idempotent=None).session_bound
    assert not policy().exchange("POST", "https://h/api/x", idempotent=None).session_bound
