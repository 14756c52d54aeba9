"""The async client (used by triggers) follows the same rules as the sync one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from airflow_provider_sapplan.core import async_http
from airflow_provider_sapplan.core.async_http import AsyncHttpClient, close_shared_session
from airflow_provider_sapplan.core.auth import TOKEN_CACHE, Token, TokenRequest
from airflow_provider_sapplan.core.http import ClientConfig
from airflow_provider_sapplan.exceptions import AuthenticationError, NotFoundError, RateLimitedError


class FakeAuth:
    platform = "Fake"
    cache_key = "fake-credential"

    def __init__(self, base: str) -> None:
        self.base = base

    def authenticate_request(self) -> TokenRequest:
        return TokenRequest("POST", f"{self.base}/token")

    def refresh_request(self, token: Token) -> TokenRequest | None:
        return None

    def parse_token(self, payload: Any) -> Token:
        return Token(value=payload["token"], expires_at=time.time() + 3600)

    def authorization_header(self, token: Token) -> dict[str, str]:
        return {"Authorization": f"Bearer {token.value}"}


@pytest.fixture
async def server() -> AsyncIterator[dict[str, Any]]:
    state: dict[str, Any] = {"tokens": 0, "calls": [], "script": []}

    async def token(request: web.Request) -> web.Response:
        state["tokens"] += 1
        return web.json_response({"token": f"t{state['tokens']}"})

    async def resource(request: web.Request) -> web.Response:
        state["calls"].append(request.headers.get("Authorization"))
        state.setdefault("requests", []).append(
            (request.method, request.headers.get("X-CSRF-Token"), request.headers.get("Cookie"), request.transport)
        )
        if request.headers.get("X-CSRF-Token") == "Fetch":
            response = web.json_response({}, headers={"X-CSRF-Token": "csrf-1"})
            response.set_cookie("JSESSIONID", "s1")
            return response
        if state["script"]:
            kind = state["script"].pop(0)
            if kind == "429":
                return web.json_response({"message": "slow down"}, status=429, headers={"Retry-After": "3"})
            if kind == "401":
                return web.json_response({}, status=401)
            if kind == "401, another token cached":  # another trigger renewed just before the rejection
                TOKEN_CACHE.put(FakeAuth.cache_key, Token(value="t-other", expires_at=time.time() + 3600))
                return web.json_response({}, status=401)
            if kind == "html":
                return web.Response(text="<html><body>Sign in</body></html>", content_type="text/html")
            if kind == "404":
                return web.json_response({"message": "no such task"}, status=404)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_route("*", "/resource", resource)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state["url"] = f"http://127.0.0.1:{port}"
    yield state
    await close_shared_session()
    await runner.cleanup()


def client(state: dict[str, Any], sleeps: list[float]) -> AsyncHttpClient:
    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    config = ClientConfig(platform="Fake", base_url=state["url"], auth=FakeAuth(state["url"]))
    return AsyncHttpClient(config, sleep=record)


async def test_retry_after_is_honoured(server: dict[str, Any]) -> None:
    sleeps: list[float] = []
    server["script"] = ["429", "429"]
    assert await client(server, sleeps).get_json("resource") == {"ok": True}
    assert sleeps == [3.0, 3.0]


async def test_persistent_429_raises(server: dict[str, Any]) -> None:
    sleeps: list[float] = []
    server["script"] = ["429"] * 10
    with pytest.raises(RateLimitedError, match="slow down"):
        await client(server, sleeps).get_json("resource")


async def test_401_renews_once(server: dict[str, Any]) -> None:
    server["script"] = ["401"]
    assert await client(server, []).get_json("resource") == {"ok": True}
    assert server["calls"] == ["Bearer t1", "Bearer t2"]


async def test_a_token_renewed_elsewhere_before_a_mass_invalidation_is_not_the_verdict(
    server: dict[str, Any],
) -> None:
    """The soak's case: every token is invalidated while a wait polls, and just before, another trigger
    put a token of its own in the shared cache. The replay gets that one, just as dead: renew again."""
    TOKEN_CACHE.put(FakeAuth.cache_key, Token(value="t-mine", expires_at=time.time() + 3600))
    server["script"] = ["401, another token cached", "401"]
    try:
        assert await client(server, []).get_json("resource") == {"ok": True}
    finally:
        TOKEN_CACHE.discard(FakeAuth.cache_key)
    assert server["calls"] == ["Bearer t-mine", "Bearer t-other", "Bearer t1"]
    assert server["tokens"] == 1


async def test_token_shared_across_clients(server: dict[str, Any]) -> None:
    for _ in range(3):
        await client(server, []).get_json("resource")
    assert server["tokens"] == 1


async def test_html_page_is_auth_error(server: dict[str, Any]) -> None:
    server["script"] = ["html"]
    with pytest.raises(AuthenticationError, match="HTML page"):
        await client(server, []).get_json("resource")


async def test_404_not_retried(server: dict[str, Any]) -> None:
    sleeps: list[float] = []
    server["script"] = ["404"]
    with pytest.raises(NotFoundError, match="no such task"):
        await client(server, sleeps).get_json("resource")
    assert sleeps == [] and len(server["calls"]) == 1


async def test_retries_then_exhausts_without_a_retry_controller_per_request(
    server: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attempt loop is the client's own: no tenacity object is built, on success or on failure.
    assert not hasattr(async_http, "tenacity")
    sleeps: list[float] = []
    server["script"] = ["429"] * 10
    fake = client(server, sleeps)
    with pytest.raises(RateLimitedError, match="slow down"):
        await fake.get_json("resource")
    attempts = fake.policy.retry.max_attempts
    assert len(server["calls"]) == attempts and sleeps == [3.0] * (attempts - 1)


async def test_reads_share_the_pool_and_csrf_writes_keep_their_cookie_session(server: dict[str, Any]) -> None:
    config = ClientConfig(
        platform="Fake", base_url=server["url"], auth=FakeAuth(server["url"]), csrf_fetch_path="/resource"
    )
    clients = [AsyncHttpClient(config), AsyncHttpClient(config)]
    for each in clients:
        await each.get_json("resource")
    reads = server["requests"][:]
    assert [(method, csrf, cookie) for method, csrf, cookie, _ in reads] == [("GET", None, None)] * 2
    assert reads[0][3] is reads[1][3]  # one pooled connection served both clients' polls
    assert all(each._own_session is None for each in clients)

    await clients[0].request("POST", "resource", json={"x": 1})
    fetch, write = server["requests"][2:]
    assert fetch[:2] == ("GET", "Fetch") and write[:3] == ("POST", "csrf-1", "JSESSIONID=s1")
    assert clients[0]._own_session is not None and fetch[3] is write[3] is not reads[0][3]
    for each in clients:
        await each.close()
