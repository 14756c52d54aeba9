"""Issue 8.2 / 9 (Test): a fresh login, one short attempt, an answer within ~15 s, defaults checked."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
import requests

from airflow_provider_sapplan.core import hook as core_hook
from airflow_provider_sapplan.core.auth import TOKEN_CACHE, Token
from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook
from tests.conftest import ANAPLAN_API, ANAPLAN_AUTH, MODEL, WORKSPACE, set_connection

AUTH_URL = f"{ANAPLAN_AUTH}/token/authenticate"
JSS_API = "https://jobscheduler-rest.cfapps.test"
UAA = "https://tenant.authentication.test"
TEMP_ID = "FFtFoykL"  # what Airflow names a connection it tests before it is saved


def token_body(value: str = "fresh") -> dict[str, Any]:
    return {"tokenInfo": {"tokenValue": value, "expiresAt": int((time.time() + 2100) * 1000)}}


@pytest.fixture
def anaplan(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> str:
    set_connection(
        monkeypatch,
        TEMP_ID,
        conn_type="anaplan",
        login="user@example.com",
        password="pw",
        extra={"auth_url": ANAPLAN_AUTH, "api_url": ANAPLAN_API, "workspace_id": WORKSPACE, "model_id": MODEL},
    )
    requests_mock.post(AUTH_URL, json=token_body())
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"meta": {"paging": {"totalSize": 1}}, "workspaces": [{}]})
    requests_mock.get(f"{ANAPLAN_API}/workspaces/{WORKSPACE}", json={"item": {"id": WORKSPACE}})
    requests_mock.get(f"{ANAPLAN_API}/workspaces/{WORKSPACE}/models/{MODEL}", json={"model": {"id": MODEL}})
    return TEMP_ID


def _jss(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> str:
    set_connection(monkeypatch, TEMP_ID, conn_type="sap_job_scheduling", **fields)
    return TEMP_ID


SERVICE_KEY = {"url": JSS_API, "uaa": {"url": UAA, "clientid": "sb-1", "clientsecret": "s3cret"}}


def _auth_calls(requests_mock: Any) -> int:
    return sum(r.url == AUTH_URL for r in requests_mock.request_history)


# -- a fresh login, never the cache ------------------------------------------------------------------------


def test_test_logs_in_afresh_even_with_a_cached_token(anaplan: str, requests_mock: Any) -> None:
    key = AnaplanHook(anaplan).get_conn().config.auth.cache_key  # type: ignore[union-attr]
    TOKEN_CACHE.put(key, Token("cached-but-revoked", time.time() + 3000))
    requests_mock.post(AUTH_URL, status_code=401, json={"statusMessage": "Login failed"})
    ok, message = AnaplanHook(anaplan).test_connection()
    assert not ok
    assert _auth_calls(requests_mock) == 1
    assert "rejected the credentials" in message and "Login (the Anaplan user's email) and Password" in message
    assert not any(r.url.startswith(ANAPLAN_API) for r in requests_mock.request_history)


def test_a_successful_test_refreshes_the_shared_cache(anaplan: str, requests_mock: Any) -> None:
    key = AnaplanHook(anaplan).get_conn().config.auth.cache_key  # type: ignore[union-attr]
    TOKEN_CACHE.put(key, Token("old", time.time() + 3000))
    ok, _ = AnaplanHook(anaplan).test_connection()
    assert ok
    assert TOKEN_CACHE.get(key).value == "fresh"  # type: ignore[union-attr]
    api = [r for r in requests_mock.request_history if r.url.startswith(ANAPLAN_API)]
    assert {r.headers["Authorization"] for r in api} == {"AnaplanAuthToken fresh"}


def test_test_never_waits_behind_the_token_lock(anaplan: str) -> None:
    key = AnaplanHook(anaplan).get_conn().config.auth.cache_key  # type: ignore[union-attr]
    lock = TOKEN_CACHE.thread_lock(key)
    assert lock.acquire(timeout=1)
    try:
        result: list[Any] = []
        worker = threading.Thread(target=lambda: result.append(AnaplanHook(anaplan).test_connection()))
        worker.start()
        worker.join(timeout=5)
        assert not worker.is_alive(), "Test waited behind another holder of the token lock"
        assert result[0][0] is True
    finally:
        lock.release()


# -- one short attempt, bounded time ----------------------------------------------------------------------


def test_test_sends_each_call_once_with_short_timeouts(anaplan: str, requests_mock: Any) -> None:
    requests_mock.get(f"{ANAPLAN_API}/workspaces", status_code=503, text="busy")
    ok, message = AnaplanHook(anaplan).test_connection()
    assert not ok and "HTTP 503" in message
    calls = [r for r in requests_mock.request_history if r.url.startswith(f"{ANAPLAN_API}/workspaces")]
    assert len(calls) == 1
    for request in requests_mock.request_history:
        connect, read = request.timeout
        assert connect <= core_hook.TEST_TIMEOUT[0] and read <= core_hook.TEST_TIMEOUT[1]


def test_test_does_not_retry_network_errors_and_names_the_url_fields(anaplan: str, requests_mock: Any) -> None:
    requests_mock.post(AUTH_URL, exc=requests.exceptions.ConnectTimeout("timed out"))
    ok, message = AnaplanHook(anaplan).test_connection()
    assert not ok and _auth_calls(requests_mock) == 1
    assert "'auth_url'" in message and "'api_url'" in message
    assert "connection's host" not in message


def test_test_answers_within_its_budget_whatever_the_server_does(
    anaplan: str, requests_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_hook, "TEST_BUDGET", 0.5)
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json=lambda request, context: time.sleep(2) or {})
    started = time.monotonic()
    ok, message = AnaplanHook(anaplan).test_connection()
    assert time.monotonic() - started < 1.5
    assert not ok and "did not answer within 0.5 s" in message and "'api_url'" in message


def _free_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server() -> Any:
    """A socket that accepts connections and never answers (a black-holed gateway)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.mark.parametrize(
    ("host", "limit"),
    [("closed-port", 3.0), ("https://10.255.255.1", 15.5), ("http://10.255.255.1", 15.5), ("silent", 15.5)],
    ids=["closed-localhost-port", "https-10.255.255.1", "http-10.255.255.1", "silent-server"],
)
def test_test_against_unreachable_hosts_answers_within_15_seconds(
    monkeypatch: pytest.MonkeyPatch, host: str, limit: float, request: pytest.FixtureRequest
) -> None:
    if host == "closed-port":
        base = f"http://127.0.0.1:{_free_closed_port()}"
    elif host == "silent":
        base = request.getfixturevalue("silent_server")
    else:
        base = host
    set_connection(
        monkeypatch,
        TEMP_ID,
        conn_type="anaplan",
        login="u@x",
        password="pw",
        extra={"auth_url": base, "api_url": f"{base}/2/0"},
    )
    started = time.monotonic()
    ok, message = AnaplanHook(TEMP_ID).test_connection()
    elapsed = time.monotonic() - started
    print(f"\nTest against {host}: {elapsed:.2f} s -> {message}")
    assert not ok and elapsed < limit
    assert "'auth_url'" in message and TEMP_ID not in message


# -- messages ------------------------------------------------------------------------------------------------


def test_test_messages_say_this_connection_not_the_temporary_id(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, TEMP_ID, conn_type="anaplan", login="u@x", extra={"api_url": "api.anaplan.com"})
    ok, message = AnaplanHook(TEMP_ID).test_connection()
    assert not ok and TEMP_ID not in message
    assert message.startswith("This connection")


def test_test_checks_the_default_workspace(anaplan: str, requests_mock: Any) -> None:
    requests_mock.get(f"{ANAPLAN_API}/workspaces/{WORKSPACE}", status_code=404, json={"status": {"message": "nf"}})
    ok, message = AnaplanHook(anaplan).test_connection()
    assert not ok and "workspace_id" in message and WORKSPACE in message and "credentials work" in message


def test_test_checks_the_default_model(anaplan: str, requests_mock: Any) -> None:
    url = f"{ANAPLAN_API}/workspaces/{WORKSPACE}/models/{MODEL}"
    requests_mock.get(url, status_code=404, json={"status": {"message": "nf"}})
    ok, message = AnaplanHook(anaplan).test_connection()
    assert not ok and "model_id" in message and MODEL in message


@pytest.mark.parametrize(
    "body", ["<html><body>404 Not Found</body></html>", '{"error": "not found"}'], ids=["html", "json"]
)
def test_test_reports_a_wrong_api_url_as_such(anaplan: str, requests_mock: Any, body: str) -> None:
    requests_mock.get(f"{ANAPLAN_API}/workspaces", status_code=404, text=body)
    ok, message = AnaplanHook(anaplan).test_connection()
    assert not ok and "API URL is wrong" in message and "'api_url'" in message
    assert "credential" not in message.split("not an id or a credential")[-1]


def test_jss_test_lists_one_job_after_a_fresh_login(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    conn = _jss(monkeypatch, extra={"service_key": SERVICE_KEY})
    requests_mock.post(f"{UAA}/oauth/token", json={"access_token": "jwt"})
    requests_mock.get(f"{JSS_API}/scheduler/jobs", json={"total": 3, "results": [{}]})
    assert SapJobSchedulingHook(conn).test_connection() == (True, "Connected to SAP Job Scheduling; 3 job(s) defined.")
    assert requests_mock.request_history[-1].qs == {"page_size": ["1"], "offset": ["0"]}
    assert SapJobSchedulingHook(conn).test_connection()[0]
    assert sum(r.url.startswith(UAA) for r in requests_mock.request_history) == 2  # one login per Test


def test_jss_401_hint_fits_client_secret_keys(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    conn = _jss(monkeypatch, extra={"service_key": SERVICE_KEY})
    requests_mock.post(f"{UAA}/oauth/token", status_code=401, json={"error": "unauthorized"})
    ok, message = SapJobSchedulingHook(conn).test_connection()
    assert not ok and "uaa.clientsecret" in message


def test_lite_plan_401_does_not_talk_about_client_secrets(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    conn = _jss(monkeypatch, host=JSS_API, login="user", password="wrong")
    requests_mock.get(f"{JSS_API}/scheduler/jobs", status_code=401, text="Unauthorized")
    ok, message = SapJobSchedulingHook(conn).test_connection()
    assert not ok and "User and Password" in message
    assert "secret" not in message.lower() and "clientid" not in message


def test_jss_network_hint_names_the_service_key_fields(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    conn = _jss(monkeypatch, extra={"service_key": SERVICE_KEY})
    requests_mock.post(f"{UAA}/oauth/token", exc=requests.exceptions.ConnectionError("refused"))
    ok, message = SapJobSchedulingHook(conn).test_connection()
    assert not ok and "'uaa.url'" in message and "'url'" in message


def test_test_refuses_the_other_platforms_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = _jss(monkeypatch, extra={"service_key": SERVICE_KEY})
    ok, message = AnaplanHook(conn).test_connection()
    assert not ok
    assert "type 'sap_job_scheduling'" in message and "type 'anaplan'" in message and TEMP_ID not in message


def test_lite_plan_binding_as_service_key_gets_its_own_hint(
    monkeypatch: pytest.MonkeyPatch, requests_mock: Any
) -> None:
    conn = _jss(monkeypatch, extra={"service_key": {"url": JSS_API, "user": "u", "password": "bad"}})
    requests_mock.get(f"{JSS_API}/scheduler/jobs", status_code=401, text="Unauthorized")
    ok, message = SapJobSchedulingHook(conn).test_connection()
    assert not ok and "service key's 'user' and 'password'" in message and "secret" not in message
