"""No secret in any repr, str, serialized trigger, template field, log record or exception of the provider.

For every platform, connections full of recognisable secrets (tests/secret_scan.py): passwords,
client secrets, refresh tokens, private keys (encrypted, with their password) and x509 keys. Then:

* repr()/str() of hooks, their clients, client configs, auth objects, the token cache and its
  tokens; operators and sensors (repr and every template field); triggers (repr and serialize());
* every exception the provider raises when the platform answers a failed login (401 on the token
  endpoint), a 401 or 403 on the API, a 500, an HTML login page on 200, an error body that echoes
  the request (headers and body), or when the connection cannot be reached: its text, repr,
  ``details``, args and the whole formatted traceback (chained causes included);
* the same through the async client (triggers), against a local aiohttp server: the trigger's
  events;
* every log record emitted meanwhile (DEBUG and up).

Sync HTTP is mocked with requests-mock; the async side uses a catch-all aiohttp server.
"""

from __future__ import annotations

import base64
import json
import logging
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
import requests_mock as rm
from aiohttp import web

from airflow_provider_sapplan.core.async_http import close_shared_session
from airflow_provider_sapplan.core.auth import TOKEN_CACHE
from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
from airflow_provider_sapplan.hooks.sap_analytics_cloud import SapAnalyticsCloudHook
from airflow_provider_sapplan.hooks.sap_cloud_integration import SapCloudIntegrationHook
from airflow_provider_sapplan.hooks.sap_data_intelligence import SapDataIntelligenceHook
from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook
from airflow_provider_sapplan.operators.anaplan import AnaplanRunImportOperator, AnaplanRunProcessOperator
from airflow_provider_sapplan.operators.sap_analytics_cloud import SapAnalyticsCloudRunMultiActionOperator
from airflow_provider_sapplan.operators.sap_cloud_integration import SapCloudIntegrationDeployOperator
from airflow_provider_sapplan.operators.sap_data_intelligence import SapDataIntelligenceRunGraphOperator
from airflow_provider_sapplan.operators.sap_job_scheduling import SapJobSchedulingRunJobOperator
from airflow_provider_sapplan.sensors.anaplan import AnaplanTaskSensor
from airflow_provider_sapplan.sensors.sap_analytics_cloud import SapAnalyticsCloudImportJobSensor
from airflow_provider_sapplan.sensors.sap_cloud_integration import SapCloudIntegrationMessageSensor
from airflow_provider_sapplan.sensors.sap_data_intelligence import SapDataIntelligenceGraphSensor
from airflow_provider_sapplan.sensors.sap_job_scheduling import SapJobSchedulingRunSensor
from airflow_provider_sapplan.triggers.anaplan import AnaplanTaskTrigger
from airflow_provider_sapplan.triggers.sap_analytics_cloud import SapAnalyticsCloudMultiActionTrigger
from airflow_provider_sapplan.triggers.sap_cloud_integration import SapCloudIntegrationDeployTrigger
from airflow_provider_sapplan.triggers.sap_data_intelligence import SapDataIntelligenceGraphTrigger
from airflow_provider_sapplan.triggers.sap_job_scheduling import SapJobSchedulingRunTrigger
from tests.conftest import MODEL, WORKSPACE, set_connection
from tests.secret_scan import SecretSet, key_and_cert, needles, search

BASE = "https://secrets.test"  # sync: requests-mock; async: replaced by the aiohttp server's URL


SECRETS = SecretSet()
KEY_PASSWORD = SECRETS.add("anaplan-key-password")
CERT, KEY, PLAIN_KEY = key_and_cert(KEY_PASSWORD)
SECRETS.pems["anaplan-key"] = KEY
SECRETS.pems["anaplan-key-plain"] = PLAIN_KEY
X509_CERT, X509_KEY, _ = key_and_cert(None)
SECRETS.pems["x509-key"] = X509_KEY
S = {
    "anaplan": SECRETS.add("anaplan-password", "user@example.com"),
    "jss": SECRETS.add("jss-client-secret", "sb-client!b1"),
    "jss_lite": SECRETS.add("jss-lite-password", "lite-user"),
    "cpi_api": SECRETS.add("cpi-api-secret", "sb-cpi-api"),
    "cpi_flow": SECRETS.add("cpi-flow-secret", "sb-cpi-flow"),
    "cpi_basic": SECRETS.add("cpi-basic-password", "cpi-user"),
    "di": SECRETS.add("di-password", "default\\etl_user"),
    "sac": SECRETS.add("sac-client-secret", "sb-sac-client"),
    "sac_refresh": SECRETS.add("sac-refresh-token"),
}
WANTED = needles(SECRETS)


def connections(base: str) -> dict[str, dict[str, Any]]:
    """conn_id -> connection: every kind of credential of every platform, pointing at ``base``."""
    anaplan = {
        "conn_type": "anaplan",
        "login": "user@example.com",
        "password": S["anaplan"],
        "extra": {
            "auth_url": f"{base}/anaplan-auth",
            "api_url": f"{base}/anaplan/2/0",
            "workspace_id": WORKSPACE,
            "model_id": MODEL,
        },
    }
    oauth = {"clientid": "sb-client!b1", "clientsecret": S["jss"], "url": f"{base}/uaa"}
    return {
        "anaplan_basic": anaplan,
        "anaplan_cert": {
            **anaplan,
            "password": None,
            "extra": {
                **anaplan["extra"],
                "auth_type": "certificate",
                "certificate": CERT,
                "private_key": KEY,
                "private_key_password": KEY_PASSWORD,
            },
        },
        "jss_secret": {
            "conn_type": "sap_job_scheduling",
            "extra": {"service_key": {"url": f"{base}/jss", "uaa": oauth}},
        },
        "jss_x509": {
            "conn_type": "sap_job_scheduling",
            "extra": {
                "service_key": {
                    "url": f"{base}/jss",
                    "uaa": {
                        "clientid": "sb-client!b1",
                        "certificate": X509_CERT,
                        "key": X509_KEY,
                        "certurl": f"{base}/cert",
                    },
                }
            },
        },
        "jss_lite": {
            "conn_type": "sap_job_scheduling",
            "extra": {
                "lite_plan_url": f"{base}/jss",
                "lite_plan_user": "lite-user",
                "lite_plan_password": S["jss_lite"],
            },
        },
        "cpi_keys": {
            "conn_type": "sap_cloud_integration",
            "extra": {
                "service_key": {
                    "oauth": {
                        "clientid": "sb-cpi-api",
                        "clientsecret": S["cpi_api"],
                        "url": f"{base}/cpi",
                        "tokenurl": f"{base}/cpi/oauth/token",
                    }
                },
                "runtime_service_key": {
                    "oauth": {
                        "clientid": "sb-cpi-flow",
                        "clientsecret": S["cpi_flow"],
                        "url": f"{base}/cpi",
                        "tokenurl": f"{base}/cpi/oauth/token",
                    }
                },
            },
        },
        "cpi_basic": {
            "conn_type": "sap_cloud_integration",
            "host": f"{base}/cpi",
            "login": "cpi-user",
            "password": S["cpi_basic"],
        },
        "di_basic": {
            "conn_type": "sap_data_intelligence",
            "host": f"{base}/di",
            "login": "default\\etl_user",
            "password": S["di"],
        },
        "sac_refresh": {
            "conn_type": "sap_analytics_cloud",
            "host": f"{base}/sac",
            "login": "sb-sac-client",
            "password": S["sac"],
            "extra": {"token_url": f"{base}/sac/oauth/token", "tenant": "G", "refresh_token": S["sac_refresh"]},
        },
    }


@dataclass
class Platform:
    """How to build and exercise one platform's public classes from a connection id."""

    hook: Callable[[str], Any]
    conn_ids: tuple[str, ...]
    calls: tuple[Callable[[Any], Any], ...]  # sync calls that reach the API
    tasks: Callable[[str], list[Any]]  # operators and sensors
    trigger: Callable[[str], Any]


PLATFORMS = {
    "anaplan": Platform(
        hook=AnaplanHook,
        conn_ids=("anaplan_basic", "anaplan_cert"),
        calls=(lambda h: h.check_connection(), lambda h: h.run_action("processes", "118000000001")),
        tasks=lambda c: [
            AnaplanRunProcessOperator(task_id="p", anaplan_conn_id=c, process_id="118000000001"),
            AnaplanRunImportOperator(task_id="i", anaplan_conn_id=c, import_id="112000000001"),
            AnaplanTaskSensor(task_id="s", anaplan_conn_id=c, process_id="118000000001", anaplan_task_id="T1"),
        ],
        trigger=lambda c: AnaplanTaskTrigger(
            conn_id=c,
            ref={
                "workspace_id": WORKSPACE,
                "model_id": MODEL,
                "action_type": "processes",
                "action_id": "118000000001",
                "task_id": "T1",
            },
            poll_interval=0.01,
            outage_window=0,
        ),
    ),
    "sap_job_scheduling": Platform(
        hook=SapJobSchedulingHook,
        conn_ids=("jss_secret", "jss_x509", "jss_lite"),
        calls=(lambda h: h.check_connection(), lambda h: h.run_now(1, data={"a": 1})),
        tasks=lambda c: [
            SapJobSchedulingRunJobOperator(task_id="r", sap_job_scheduling_conn_id=c, job_id=1),
            SapJobSchedulingRunSensor(task_id="s", sap_job_scheduling_conn_id=c, job_id=1, schedule_id="S1"),
        ],
        trigger=lambda c: SapJobSchedulingRunTrigger(
            conn_id=c, ref={"job_id": 1, "schedule_id": "S1", "run_id": "R1"}, poll_interval=0.01, outage_window=0
        ),
    ),
    "sap_cloud_integration": Platform(
        hook=SapCloudIntegrationHook,
        conn_ids=("cpi_keys", "cpi_basic"),
        calls=(lambda h: h.check_connection(), lambda h: h.deploy("Orders")),
        tasks=lambda c: [
            SapCloudIntegrationDeployOperator(task_id="d", sap_cloud_integration_conn_id=c, artifact_id="Orders"),
            SapCloudIntegrationMessageSensor(task_id="s", sap_cloud_integration_conn_id=c, message_guid="M1"),
        ],
        trigger=lambda c: SapCloudIntegrationDeployTrigger(
            conn_id=c,
            ref={"artifact_id": "Orders", "task_id": "T1", "started_at": 0, "grace_seconds": 0},
            poll_interval=0.01,
            outage_window=0,
        ),
    ),
    "sap_data_intelligence": Platform(
        hook=SapDataIntelligenceHook,
        conn_ids=("di_basic",),
        calls=(lambda h: h.check_connection(), lambda h: h.request_change("RF_SALES", "resume")),
        tasks=lambda c: [
            SapDataIntelligenceRunGraphOperator(task_id="g", sap_data_intelligence_conn_id=c, graph="com.example.g"),
            SapDataIntelligenceGraphSensor(task_id="s", sap_data_intelligence_conn_id=c, handle="H1"),
        ],
        trigger=lambda c: SapDataIntelligenceGraphTrigger(
            conn_id=c, ref={"handle": "H1"}, poll_interval=0.01, outage_window=0
        ),
    ),
    "sap_analytics_cloud": Platform(
        hook=SapAnalyticsCloudHook,
        conn_ids=("sac_refresh",),
        calls=(lambda h: h.check_connection(), lambda h: h.start_multi_action("t.G:MA", [])),
        tasks=lambda c: [
            SapAnalyticsCloudRunMultiActionOperator(
                task_id="m", sap_analytics_cloud_conn_id=c, multi_action_id="t.G:MA"
            ),
            SapAnalyticsCloudImportJobSensor(task_id="s", sap_analytics_cloud_conn_id=c, job_id="J1"),
        ],
        trigger=lambda c: SapAnalyticsCloudMultiActionTrigger(
            conn_id=c,
            ref={"multi_action_id": "t.G:MA", "execution_id": "E1"},
            poll_interval=0.01,
            outage_window=0,
        ),
    ),
}
CASES = [(name, conn_id) for name, platform in PLATFORMS.items() for conn_id in platform.conn_ids]
MODES = ("login_401", "api_401", "api_403", "api_500", "login_page", "echo", "unreachable")
TOKEN_BODY = {
    "status": "SUCCESS",
    "tokenInfo": {"tokenValue": "at-1", "expiresAt": 9_999_999_999_000, "refreshTokenId": "rt-id"},
    "access_token": "at-1",
    "token_type": "bearer",
    "expires_in": 3600,
}
LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form action='/login'></form></body></html>"


def answer(mode: str, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
    """Status, content type and body of the fake platform for one request in ``mode``."""
    is_login = path.endswith(("/token/authenticate", "/oauth/token"))
    if is_login:
        if mode == "login_401":
            return 401, "application/json", b'{"error": "invalid_client", "error_description": "Bad credentials"}'
        if mode == "echo":
            echoed = {"error": "invalid_request", "error_description": f"got {body!r} with {headers!r}"}
            return 400, "application/json", json.dumps(echoed).encode()
        return 200, "application/json", json.dumps(TOKEN_BODY).encode()
    if mode in ("api_401", "login_401"):
        return 401, "application/json", b'{"message": "Unauthorized"}'
    if mode == "api_403":
        return 403, "application/json", b'{"error": {"code": "403", "message": {"value": "Forbidden"}}}'
    if mode == "api_500":
        return 500, "application/json", b'{"message": "Internal Server Error"}'
    if mode == "echo":
        echoed = {"message": f"bad request {method} {path}: {body!r} with headers {headers!r}"}
        return 500, "application/json", json.dumps(echoed).encode()
    return 200, "text/html; charset=utf-8", LOGIN_PAGE.encode()


def texts_of(error: BaseException) -> list[str]:
    """Everything an exception may show: text, repr, details, args, the formatted chain."""
    found = [str(error), repr(error), "".join(traceback.format_exception(error))]
    for item in (getattr(error, "details", None), getattr(error, "args", None)):
        found.append(json.dumps(item, default=repr))
    cause = error.__cause__ or error.__context__
    if cause is not None and cause is not error:
        found += [str(cause), repr(cause)]
    return found


def assert_clean(where: str, *texts: Any) -> None:
    for text in texts:
        hits = search(text if isinstance(text, (str, bytes)) else repr(text), WANTED)
        assert not hits, f"{where}: {hits} in {str(text)[:2000]}"


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog
    for record in caplog.records:
        message = record.getMessage()
        extra = record.exc_text or ("".join(traceback.format_exception(*record.exc_info)) if record.exc_info else "")
        assert_clean(f"log record {record.name}", message + extra)


def _set_connections(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    for conn_id, conn in connections(base).items():
        set_connection(monkeypatch, conn_id, **conn)


@pytest.mark.parametrize(("platform", "conn_id"), CASES)
def test_reprs_of_hooks_clients_auth_and_tasks(
    platform: str, conn_id: str, monkeypatch: pytest.MonkeyPatch, captured: Any
) -> None:
    _set_connections(monkeypatch, BASE)
    spec = PLATFORMS[platform]
    hook = spec.hook(conn_id)
    client = hook.client
    config = client.config
    objects = [hook, client, config, config.auth, getattr(config.auth, "key", None), TOKEN_CACHE]
    objects += [value for name, value in vars(hook).items() if name not in ("_connection", "connection")]
    for obj in objects:
        assert_clean(f"{platform} {type(obj).__name__}", repr(obj), str(obj))
    for task in spec.tasks(conn_id):
        assert_clean(f"{type(task).__name__} repr", repr(task), str(task))
        for field in task.template_fields:
            assert_clean(f"{type(task).__name__}.{field}", repr(getattr(task, field, None)))
    trigger = spec.trigger(conn_id)
    assert_clean(f"{type(trigger).__name__}", repr(trigger), json.dumps(trigger.serialize(), default=repr))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("platform", "conn_id"), CASES)
def test_sync_errors_carry_no_secret(
    platform: str, conn_id: str, mode: str, monkeypatch: pytest.MonkeyPatch, captured: Any
) -> None:
    _set_connections(monkeypatch, BASE)
    spec = PLATFORMS[platform]

    def respond(request: Any, context: Any) -> bytes:
        if mode == "unreachable":
            raise requests.ConnectionError(f"cannot connect to {request.url}")
        path = request.path
        status, content_type, body = answer(mode, request.method, path, dict(request.headers), request.body or b"")
        context.status_code = status
        context.headers["Content-Type"] = content_type
        return body

    monkeypatch.setattr("time.sleep", lambda seconds: None)  # retries of 5xx/unreachable without waiting
    with rm.Mocker() as mocker:
        mocker.register_uri(rm.ANY, rm.ANY, content=respond)
        for call in spec.calls:
            hook = spec.hook(conn_id)
            try:
                result = call(hook)
            except Exception as error:  # every error the provider raises is checked
                assert_clean(f"{platform}/{conn_id}/{mode} {type(error).__name__}", *texts_of(error))
                assert_clean(f"{platform}/{conn_id}/{mode} hook after error", repr(hook), repr(hook.client))
            else:
                assert_clean(f"{platform}/{conn_id}/{mode} result", repr(result))
    for token in list(TOKEN_CACHE._tokens.values()):
        assert_clean("cached token", repr(token))


@pytest.fixture
async def fake_platform() -> AsyncIterator[dict[str, Any]]:
    state: dict[str, Any] = {"mode": "api_401"}

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        status, content_type, payload = answer(state["mode"], request.method, request.path, dict(request.headers), body)
        return web.Response(status=status, body=payload, content_type=content_type.split(";")[0])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state["url"] = f"http://127.0.0.1:{port}"
    yield state
    await close_shared_session()
    await runner.cleanup()


@pytest.mark.parametrize("mode", [m for m in MODES if m != "unreachable"])
@pytest.mark.parametrize(("platform", "conn_id"), CASES)
async def test_trigger_events_carry_no_secret(
    platform: str,
    conn_id: str,
    mode: str,
    fake_platform: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    captured: Any,
) -> None:
    _set_connections(monkeypatch, fake_platform["url"])
    fake_platform["mode"] = mode

    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr("airflow_provider_sapplan.core.async_http._sleep", no_wait)  # 5xx retries, at once
    trigger = PLATFORMS[platform].trigger(conn_id)
    events = []
    try:
        async for event in trigger.run():
            events.append(event)
            break
    except Exception as error:  # a trigger that raises is checked like any error
        assert_clean(f"{type(trigger).__name__} raised", *texts_of(error))
    for event in events:
        assert_clean(f"{type(trigger).__name__} event", repr(event), json.dumps(event.payload, default=repr))
    assert events, f"{type(trigger).__name__} fired no event in mode {mode}"


def test_the_search_finds_each_kind_of_leak() -> None:
    """The needles catch a secret raw, URL-encoded, in basic auth and as a PEM line (the test can fail)."""
    from urllib.parse import quote

    secret, user = S["di"], "default\\etl_user"
    assert search(secret, WANTED)
    assert search(quote(secret, safe=""), WANTED)
    assert search(f"Basic {base64.b64encode(f'{user}:{secret}'.encode()).decode()}", WANTED)
    assert search(json.dumps({"k": KEY}), WANTED)
    assert search(base64.b64encode(b"xx" + secret.encode()), WANTED)
    assert search(PLAIN_KEY.splitlines()[3], WANTED)
    assert not search("S3C-R3T nothing here", WANTED)


def test_server_text_echoing_the_request_credentials_is_redacted() -> None:
    """A gateway that echoes the request: the error keeps the server's words, not the credentials sent."""
    from airflow_provider_sapplan.core.auth import StaticHeaderAuth, TokenRequest
    from airflow_provider_sapplan.core.http import ClientConfig
    from airflow_provider_sapplan.core.transport_policy import TransportPolicy

    secret, user = S["di"], "default\\etl_user"
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    auth = StaticHeaderAuth({"Authorization": f"Basic {basic}"}, identity=("u",))
    static = TransportPolicy.of(ClientConfig("Fake", "https://h/api", auth=auth))
    echo = f'{{"message": "rejected Authorization: Basic {basic} (password {secret}) for {user}"}}'.encode()
    with pytest.raises(Exception) as info:
        static.exchange("GET", "https://h/api/x", idempotent=None).judge(
            500, {"Content-Type": "application/json"}, error_body=lambda: echo, body_peek=lambda: echo
        )
    assert_clean("static auth echo", *texts_of(info.value))
    assert "rejected Authorization: *** (password ***) for default" in str(info.value)

    token_request = TokenRequest(
        "POST",
        "https://h/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": S["sac_refresh"]},
        headers={"Authorization": "Basic " + base64.b64encode(f"client:{S['sac']}".encode()).decode()},
    )
    form = f"grant_type=refresh_token&refresh_token={quote_plus(S['sac_refresh'])}"
    echo = json.dumps({"error_description": f"bad form {form} from client:{S['sac']}"}).encode()
    with pytest.raises(Exception) as info:
        static.token_exchange(token_request).judge(
            400, {"Content-Type": "application/json"}, error_body=lambda: echo, body_peek=lambda: echo
        )
    assert_clean("token request echo", *texts_of(info.value))
    assert "bad form grant_type=refresh_token&refresh_token=***" in str(info.value)


def test_the_database_search_decompresses_and_decrypts(tmp_path: Any) -> None:
    """A secret inside a zlib-compressed value or a Fernet-encrypted one (nested in JSON) is found, with where."""
    import sqlite3
    import zlib

    from cryptography.fernet import Fernet

    from tests.secret_scan import scan_sqlite

    key = Fernet.generate_key()
    hidden = Fernet(key).encrypt(json.dumps({"refresh_token": S["sac_refresh"]}).encode()).decode()
    db = tmp_path / "meta.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table serialized_dag (dag_id text, data_compressed blob)")
        conn.execute("create table trigger (id integer, kwargs text)")
        conn.execute("insert into serialized_dag values ('d', ?)", (zlib.compress(S["di"].encode()),))
        conn.execute("insert into trigger values (1, ?)", (json.dumps({"__var": hidden}),))
    found = scan_sqlite(db, WANTED, key.decode())
    assert any(f.startswith("serialized_dag.data_compressed (row 0, zlib): di-password (raw)") for f in found), found
    assert any(f.startswith("trigger.kwargs (row 0, fernet): sac-refresh-token (raw)") for f in found), found
    assert not any("fernet" in f for f in scan_sqlite(db, WANTED, Fernet.generate_key().decode())), "wrong key"


def test_client_certificate_keys_never_reach_the_disk(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """x509 keys are handed to TLS as files, but no file with the key is left, even after os._exit.

    Airflow 2.11 ends a task's process with os._exit, so cleanup at exit never runs; the key must not
    be on the disk in the first place (found by tests/system/test_secrets.py in the task's TMPDIR).
    """
    import os
    import ssl
    import tempfile

    from airflow_provider_sapplan.core import tls

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(tls, "_directory", None)
    monkeypatch.setattr(tls, "_written", {})
    pid = os.fork()
    if pid == 0:  # the child uses the key as a task would, then ends like an Airflow 2.11 task process
        code = 0
        try:
            cert_file, key_file = tls.pem_files(X509_CERT, X509_KEY)
            ssl.create_default_context().load_cert_chain(cert_file, key_file)
            tls.client_ssl_context((cert_file, key_file))
        except BaseException:  # any failure is the child's exit code
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the certificate and key could not be loaded"
    left = [p for p in tmp_path.rglob("*") if p.is_file() and search(p.read_bytes(), WANTED)]
    assert not left, f"private key left on disk: {left}"
