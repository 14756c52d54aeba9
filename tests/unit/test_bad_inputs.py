# ruff: noqa: E501  (the catalogue table reads best one case per block)
"""The bad-input catalogue: every wrong input a user can make, the message they get, checked one by one.

Each :class:`Case` is one row of ``docs/bad-inputs.md``. The test runs it and checks the message (and,
for inputs that can be checked locally, that no HTTP request was sent). Regenerate the document with
``python -m tests.unit.test_bad_inputs docs/bad-inputs.md`` after changing a case or a message.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_sapplan.core import validation as v
from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook

ANAPLAN_API = "https://api.anaplan.test/2/0"
ANAPLAN_AUTH = "https://auth.anaplan.test"
WS = "8a868cd97d1e2f3b017d2f4a5b6c0001"
MODEL = "75A40874E6B64FA3AE0743278996850F"
JSS_API = "https://jobscheduler-rest.cfapps.test"
UAA = "https://tenant.authentication.test"
CERT_URL = "https://tenant.authentication.cert.test"
KEY = {"url": JSS_API, "uaa": {"url": UAA, "clientid": "sb-1", "clientsecret": "s3cret"}}
FAKE_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
FAKE_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
TEST_FILE = "tests/unit/test_bad_inputs.py::test_bad_input"


@dataclass(frozen=True)
class Case:
    """One wrong input: where it goes, what it is, how to provoke it, and what the message must say."""

    id: str
    platform: str
    kind: str
    given: str
    run: Callable[[Any], Any]
    expect: str
    local: bool = True
    """True when the input is checked before any HTTP request (the test asserts none was sent)."""


# -- helpers ----------------------------------------------------------------------------------------------


def _set(env: Any, conn_id: str, **fields: Any) -> None:
    env.mp.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def ana(env: Any, *, login: str | None = "u@example.com", password: str | None = "pw", **extra: Any) -> AnaplanHook:
    merged = {"auth_url": ANAPLAN_AUTH, "api_url": ANAPLAN_API, **extra}
    _set(env, "ana", conn_type="anaplan", login=login, password=password, extra=merged)
    return AnaplanHook("ana")


def ana_cert(env: Any, **extra: Any) -> AnaplanHook:
    return ana(env, login=None, password=None, auth_type="certificate", **extra)


def jss(env: Any, service_key: Any = None, **fields: Any) -> SapJobSchedulingHook:
    extra = fields.pop("extra", {})
    if service_key is not None:
        extra["service_key"] = service_key
    _set(env, "jss", conn_type="sap_job_scheduling", extra=extra, **fields)
    return SapJobSchedulingHook("jss")


def key_with(**uaa: Any) -> dict[str, Any]:
    return {"url": JSS_API, "uaa": {k: val for k, val in {**KEY["uaa"], **uaa}.items() if val is not None}}


def x509(**uaa: Any) -> dict[str, Any]:
    base = {"clientid": "sb-1", "certificate": FAKE_CERT, "key": FAKE_KEY, "certurl": CERT_URL}
    return {"url": JSS_API, "uaa": {k: val for k, val in {**base, **uaa}.items() if val is not None}}


def token_ok(env: Any) -> None:
    expires = int((time.time() + 2100) * 1000)
    env.rm.post(f"{ANAPLAN_AUTH}/token/authenticate", json={"tokenInfo": {"tokenValue": "t", "expiresAt": expires}})


def anaplan_test_with(env: Any, **routes: Any) -> tuple[bool, str]:
    """Test an Anaplan connection whose token works and whose API answers as ``routes`` say."""
    hook = ana(env, workspace_id=WS, model_id=MODEL)
    token_ok(env)
    env.rm.get(f"{ANAPLAN_API}/workspaces", **routes.get("workspaces", {"json": {"workspaces": []}}))
    env.rm.get(f"{ANAPLAN_API}/workspaces/{WS}", **routes.get("workspace", {"json": {"item": {}}}))
    env.rm.get(f"{ANAPLAN_API}/workspaces/{WS}/models/{MODEL}", **routes.get("model", {"json": {"model": {}}}))
    return hook.test_connection()


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def real_network(env: Any) -> None:
    """Let this case's requests reach the real network (a closed local port)."""
    env.rm.real_http = True


def encrypted_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"right-password"),
    ).decode()


def schedule(cron: str) -> Callable[[Any], Any]:
    return lambda env: jss(env, KEY).create_schedule(7, {"cron": cron, "active": True})


def _ctx() -> dict[str, Any]:
    from unittest import mock

    return {"ti": mock.MagicMock()}


def _render(op: Any, **params: Any) -> Any:
    import jinja2

    op.render_template_fields({"params": params}, jinja_env=jinja2.Environment())
    return op


def ana_op(env: Any, kind: str, **kwargs: Any) -> Any:
    """An Anaplan operator on a valid connection (so only the argument under test is wrong)."""
    from airflow_provider_sapplan.operators import anaplan as ops

    ana(env)
    cls = {
        "import": ops.AnaplanRunImportOperator,
        "export": ops.AnaplanRunExportOperator,
        "upload": ops.AnaplanUploadFileOperator,
        "download": ops.AnaplanDownloadFileOperator,
    }[kind]
    defaults = {
        "import": {"import_id": "112000000001"},
        "export": {"export_id": "116000000001"},
        "upload": {"file_id": "113000000001", "source": "/tmp/sapplan-data.csv"},
        "download": {"file_id": "113000000001", "destination": "/tmp/sapplan-out.csv"},
    }[kind]
    return cls(task_id="t", anaplan_conn_id="ana", **{**defaults, **kwargs})


def jss_op(env: Any, kind: str, **kwargs: Any) -> Any:
    """A Job Scheduling operator on a valid connection."""
    from airflow_provider_sapplan.operators import sap_job_scheduling as ops

    jss(env, KEY)
    cls = {
        "run": ops.SapJobSchedulingRunJobOperator,
        "create": ops.SapJobSchedulingCreateJobOperator,
        "delete": ops.SapJobSchedulingDeleteJobOperator,
        "active": ops.SapJobSchedulingSetActiveOperator,
    }[kind]
    return cls(task_id="t", sap_job_scheduling_conn_id="jss", **kwargs)


HTML_404 = {"status_code": 404, "text": "<html><body><h1>404 Not Found</h1></body></html>"}
ANA = "Anaplan"
JOBS = "Job Scheduling"
CORE = "any platform"

# -- the catalogue ------------------------------------------------------------------------------------------

CASES: list[Case] = [
    # Anaplan connection fields
    Case("ana-api-url-no-scheme", ANA, "connection", "extra `api_url` = `api.anaplan.com/2/0`",
         lambda env: ana(env, api_url="api.anaplan.com/2/0").get_conn(), "has no scheme; write it as https://"),
    Case("ana-api-url-ftp", ANA, "connection", "extra `api_url` = `ftp://api.anaplan.com/2/0`",
         lambda env: ana(env, api_url="ftp://api.anaplan.com/2/0").get_conn(), "uses the scheme 'ftp'"),
    Case("ana-auth-url-no-host", ANA, "connection", "extra `auth_url` = `https://`",
         lambda env: ana(env, auth_url="https://").get_conn(), "extra 'auth_url' 'https://' has no host name"),
    Case("ana-auth-url-spaces", ANA, "connection", "extra `auth_url` = `https://auth.anaplan.com /`",
         lambda env: ana(env, auth_url="https://auth.anaplan.com /x").get_conn(), "contains spaces"),
    Case("ana-auth-url-blank", ANA, "connection", "extra `auth_url` = `'   '` (blank)",
         lambda env: ana(env, auth_url="   ").get_conn(), "extra 'auth_url' is empty"),
    Case("ana-api-url-query", ANA, "connection", "extra `api_url` with `?tenant=x`",
         lambda env: ana(env, api_url=f"{ANAPLAN_API}?tenant=x").get_conn(), "must not carry a query string"),
    Case("ana-api-url-port-0", ANA, "connection", "extra `api_url` = `https://api.anaplan.com:0/2/0`",
         lambda env: ana(env, api_url="https://api.anaplan.com:0/2/0").get_conn(), "has port 0"),
    Case("ana-timeout-negative", ANA, "connection", "extra `timeout` = `-1`",
         lambda env: ana(env, timeout=-1).get_conn(), "extra 'timeout' must be positive seconds (e.g. 300) or connect and read seconds (e.g. 10, 300), got -1."),
    Case("ana-timeout-zero", ANA, "connection", "extra `timeout` = `0`",
         lambda env: ana(env, timeout=0).get_conn(), "extra 'timeout' must be positive seconds"),
    Case("ana-timeout-text", ANA, "connection", "extra `timeout` = `\"ten\"`",
         lambda env: ana(env, timeout="ten").get_conn(), "extra 'timeout' must be positive seconds (e.g. 300) or connect and read seconds"),
    Case("ana-timeout-one-element", ANA, "connection", "extra `timeout` = `[10]`",
         lambda env: ana(env, timeout=[10]).get_conn(), "connect and read seconds (e.g. 10, 300), got [10]"),
    Case("ana-timeout-pair-negative", ANA, "connection", "extra `timeout` = `[10, -5]`",
         lambda env: ana(env, timeout=[10, -5]).get_conn(), "must be positive seconds"),
    Case("ana-verify-missing-bundle", ANA, "connection", "extra `verify` = `/etc/ssl/none.pem` (no such file)",
         lambda env: ana(env, verify="/etc/ssl/none.pem").get_conn(), "no file exists at '/etc/ssl/none.pem'"),
    Case("ana-auth-type-unknown", ANA, "connection", "extra `auth_type` = `oauth`",
         lambda env: ana(env, auth_type="oauth").get_conn(), "auth_type must be 'basic' or 'certificate'"),
    Case("ana-basic-no-password", ANA, "connection", "basic auth, Password empty",
         lambda env: ana(env, password=None).get_conn(), "has no login or password"),
    Case("ana-cert-missing-cert", ANA, "connection", "certificate auth, `certificate` empty",
         lambda env: ana_cert(env, private_key=FAKE_KEY).get_conn(), "'certificate' extra is empty"),
    Case("ana-cert-path-missing", ANA, "path", "extra `certificate` = `/etc/anaplan/missing.pem`",
         lambda env: ana_cert(env, certificate="/etc/anaplan/missing.pem", private_key=FAKE_KEY).get_conn(),
         "no file at '/etc/anaplan/missing.pem'"),
    Case("ana-key-path-missing", ANA, "path", "extra `private_key` = `~/keys/anaplan.key` (missing)",
         lambda env: ana_cert(env, certificate=FAKE_CERT, private_key="~/keys/anaplan.key").get_conn(),
         "extra 'private_key': no file at '~/keys/anaplan.key'"),
    Case("ana-key-path-directory", ANA, "path", "extra `private_key` = `/tmp` (a directory)",
         lambda env: ana_cert(env, certificate=FAKE_CERT, private_key="/tmp").get_conn(), "names the directory"),
    Case("ana-key-holds-certificate", ANA, "connection", "the certificate PEM pasted into `private_key`",
         lambda env: ana_cert(env, certificate=FAKE_CERT, private_key=FAKE_CERT).get_conn(),
         "must hold a private key PEM block, but it holds a 'CERTIFICATE' block"),
    Case("ana-cert-holds-key", ANA, "connection", "the private key PEM pasted into `certificate`",
         lambda env: ana_cert(env, certificate=FAKE_KEY, private_key=FAKE_KEY).get_conn(),
         "must hold a certificate PEM block"),
    Case("ana-cert-base64-only", ANA, "connection", "extra `certificate` = base64 body without the BEGIN/END lines",
         lambda env: ana_cert(env, certificate="MII" + "A" * 300, private_key=FAKE_KEY).get_conn(),
         "neither PEM text"),
    Case("ana-key-wrong-password", ANA, "connection", "encrypted `private_key`, wrong `private_key_password`",
         lambda env: ana_cert(env, certificate=FAKE_CERT, private_key=encrypted_key(), private_key_password="nope")
         .get_conn().token(), "Extra 'private_key_password' does not open the Anaplan connection's private key"),
    Case("ana-data-format", ANA, "connection", "extra `encoded_data_format` = `v3`",
         lambda env: ana_cert(env, certificate=FAKE_CERT, private_key=FAKE_KEY, encoded_data_format="v3").get_conn(),
         "encoded_data_format must be 'v2' (default) or 'v1'"),
    Case("ana-extra-not-json", ANA, "connection", "Extra = `{bad json`",
         lambda env: (_set(env, "ana", conn_type="anaplan", login="u", password="p", extra="{bad json"),
                      AnaplanHook("ana").get_conn()), "the Extra field is not valid JSON"),
    Case("ana-given-jss-connection", ANA, "connection", "an operator's `anaplan_conn_id` names a Job Scheduling connection",
         lambda env: (jss(env, KEY), AnaplanHook("jss").get_conn()),
         "is of type 'sap_job_scheduling', but AnaplanHook needs a connection of type 'anaplan'"),
    Case("ana-no-workspace", ANA, "argument", "no `workspace_id` in the task nor the connection",
         lambda env: ana(env).list_files(), "No Anaplan workspace_id given"),
    # Job Scheduling connection fields
    Case("jss-key-not-json", JOBS, "connection", "extra `service_key` = `{not json`",
         lambda env: jss(env, "{not json").get_conn(), "service_key is not valid JSON"),
    Case("jss-key-list", JOBS, "connection", "extra `service_key` = `[1, 2]`",
         lambda env: jss(env, "[1, 2]").get_conn(), "service_key must be a JSON object"),
    Case("jss-key-no-url", JOBS, "connection", "service key without `url`",
         lambda env: jss(env, {"uaa": KEY["uaa"]}).get_conn(), "the service key has no 'url'"),
    Case("jss-key-no-secret", JOBS, "connection", "service key without `uaa.clientsecret`",
         lambda env: jss(env, key_with(clientsecret=None)).get_conn(), "has no 'uaa.clientsecret'"),
    Case("jss-key-no-clientid", JOBS, "connection", "service key without `uaa.clientid`",
         lambda env: jss(env, key_with(clientid=None)).get_conn(), "has no 'uaa.clientid'"),
    Case("jss-key-no-uaa", JOBS, "connection", "service key without `uaa` (and not a lite binding)",
         lambda env: jss(env, {"url": JSS_API}).get_conn(), "has no 'uaa' section"),
    Case("jss-x509-no-certurl", JOBS, "connection", "x509 service key without `uaa.certurl`",
         lambda env: jss(env, x509(certurl=None)).get_conn(), "has no 'uaa.certurl'"),
    Case("jss-x509-key-path-missing", JOBS, "path", "x509 service key, `uaa.key` = `/secrets/jss.key` (missing)",
         lambda env: jss(env, x509(key="/secrets/jss.key")).get_conn(),
         "service key 'uaa.key': no file at '/secrets/jss.key'"),
    Case("jss-x509-cert-holds-key", JOBS, "connection", "x509 service key, the key pasted into `uaa.certificate`",
         lambda env: jss(env, x509(certificate=FAKE_KEY)).get_conn(),
         "service key 'uaa.certificate' must hold a certificate PEM block"),
    Case("jss-url-no-scheme", JOBS, "connection", "service key `url` = `jobscheduler-rest.cfapps.eu10.hana.ondemand.com`",
         lambda env: jss(env, {**KEY, "url": "jobscheduler-rest.cfapps.eu10.hana.ondemand.com"}).get_conn(),
         "service key 'url' 'jobscheduler-rest.cfapps.eu10.hana.ondemand.com' has no scheme"),
    Case("jss-uaa-url-ftp", JOBS, "connection", "service key `uaa.url` = `ftp://tenant.authentication.test`",
         lambda env: jss(env, key_with(url="ftp://tenant.authentication.test")).get_conn(),
         "service key 'uaa.url' 'ftp://tenant.authentication.test' uses the scheme 'ftp'"),
    Case("jss-nothing", JOBS, "connection", "no `service_key` and no Host/Login/Password",
         lambda env: jss(env).get_conn(), "has no service_key extra"),
    Case("jss-lite-host-scheme", JOBS, "connection", "lite plan, Host = `ftp://scheduler.test`",
         lambda env: jss(env, host="ftp://scheduler.test", login="u", password="p").get_conn(),
         "REST URL 'ftp://scheduler.test' uses the scheme 'ftp'"),
    Case("jss-timeout-negative", JOBS, "connection", "extra `timeout` = `-5`",
         lambda env: jss(env, KEY, extra={"timeout": -5}).get_conn(), "extra 'timeout' must be positive seconds"),
    Case("jss-given-anaplan-connection", JOBS, "connection", "`sap_job_scheduling_conn_id` names an Anaplan connection",
         lambda env: (ana(env), SapJobSchedulingHook("ana").get_conn()),
         "is of type 'anaplan', but SapJobSchedulingHook needs a connection of type 'sap_job_scheduling'"),
    # Job Scheduling cron (checked before the schedule is sent)
    Case("cron-quartz-order", JOBS, "argument", "cron `0 0 6 * * * *` (Quartz order, seconds first)",
         schedule("0 0 6 * * * *"), "looks like Quartz order (Second Minute Hour Day Month DayOfWeek Year), but "
         "SAP reads Year Month Day DayOfWeek Hour Minute Second: write '* * * * 6 0 0'"),
    Case("cron-quartz-question-mark", JOBS, "argument", "cron `0 30 8 ? * mon *` (Quartz with `?`)",
         schedule("0 30 8 ? * mon *"), "write '* * * mon 8 30 0'"),
    Case("cron-hour-25", JOBS, "argument", "cron `* * * * 25 0 0`", schedule("* * * * 25 0 0"),
         "Hour 25 is outside 0-23"),
    Case("cron-month-13", JOBS, "argument", "cron `* 13 * * 6 0 0`", schedule("* 13 * * 6 0 0"),
         "Month 13 is outside 1-12"),
    Case("cron-six-fields", JOBS, "argument", "cron `0 6 * * * *` (6 fields)", schedule("0 6 * * * *"),
         "has 6 fields; SAP's cron has 7"),
    Case("cron-unix-five-fields", JOBS, "argument", "cron `30 6 * * 1` (Unix order, 5 fields)", schedule("30 6 * * 1"),
         "It looks like Unix cron (Minute Hour Day Month DayOfWeek); in SAP's order write '* * * 1 6 30 0'"),
    Case("cron-quartz-six-fields", JOBS, "argument", "cron `0 0 6 * * ?` (Quartz without year)", schedule("0 0 6 * * ?"),
         "in SAP's order write '* * * * 6 0 0'"),
    Case("ana-key-encrypted-no-password", ANA, "connection", "encrypted `private_key`, no `private_key_password`",
         lambda env: ana_cert(env, certificate=FAKE_CERT, private_key=encrypted_key()).get_conn().token(),
         "private key is encrypted: set extra 'private_key_password'"),
    Case("cron-bad-weekday", JOBS, "argument", "cron `* * * funday 6 0 0`", schedule("* * * funday 6 0 0"),
         "DayOfWeek 'funday' is not *"),
    Case("cron-step-zero", JOBS, "argument", "cron `* * * * */0 0 0`", schedule("* * * * */0 0 0"),
         "Hour step /0 is not allowed"),
    Case("cron-second-60", JOBS, "argument", "cron `* * * * 6 0 60`", schedule("* * * * 6 0 60"),
         "Second 60 is outside 0-59"),
    # Test button and remote answers
    Case("test-anaplan-basic-401", ANA, "remote answer", "Test: wrong Anaplan password (token endpoint 401)",
         lambda env: (env.rm.post(f"{ANAPLAN_AUTH}/token/authenticate", status_code=401, json={"statusMessage": "x"}),
                      ana(env).test_connection())[1],
         "Check Login (the Anaplan user's email) and Password", local=False),
    Case("test-anaplan-cert-401", ANA, "remote answer", "Test: certificate not registered / key not matching (401)",
         lambda env: (env.rm.post(f"{ANAPLAN_AUTH}/token/authenticate", status_code=401),
                      ana_cert(env, certificate=FAKE_CERT, private_key=encrypted_key(),
                               private_key_password="right-password").test_connection())[1],
         "'private_key' is its matching key", local=False),
    Case("test-xsuaa-secret-401", JOBS, "remote answer", "Test: rotated client secret (XSUAA 401)",
         lambda env: (env.rm.post(f"{UAA}/oauth/token", status_code=401, json={"error": "unauthorized"}),
                      jss(env, KEY).test_connection())[1], "Check the service key's uaa.clientid, uaa.clientsecret",
         local=False),
    Case("test-xsuaa-x509-401", JOBS, "remote answer", "Test: expired x509 service key (XSUAA 401)",
         lambda env: (env.rm.post(f"{CERT_URL}/oauth/token", status_code=401),
                      jss(env, x509()).test_connection())[1], "Check the service key's uaa.certificate and uaa.key",
         local=False),
    Case("test-lite-401", JOBS, "remote answer", "Test: lite plan, wrong password (API 401)",
         lambda env: (env.rm.get(f"{JSS_API}/scheduler/jobs", status_code=401, text="Unauthorized"),
                      jss(env, host=JSS_API, login="u", password="bad").test_connection())[1],
         "The lite plan's user and password were rejected", local=False),
    Case("test-anaplan-wrong-api-url", ANA, "remote answer", "Test: `api_url` points at a web server (HTML 404)",
         lambda env: anaplan_test_with(env, workspaces=HTML_404)[1], "the API URL is wrong, not an id or a credential",
         local=False),
    Case("test-anaplan-wrong-auth-url", ANA, "remote answer", "Test: `auth_url` points elsewhere (404 at login)",
         lambda env: (env.rm.post(f"{ANAPLAN_AUTH}/token/authenticate", status_code=404),
                      ana(env).test_connection())[1], "the login URL is wrong, not the credentials", local=False),
    Case("test-jss-wrong-url", JOBS, "remote answer", "Test: service key `url` of another service (404)",
         lambda env: (env.rm.post(f"{UAA}/oauth/token", json={"access_token": "j"}),
                      env.rm.get(f"{JSS_API}/scheduler/jobs", **HTML_404),
                      jss(env, KEY).test_connection())[2], "the REST URL is wrong", local=False),
    Case("test-anaplan-no-workspace", ANA, "remote answer", "Test: default `workspace_id` that does not exist",
         lambda env: anaplan_test_with(env, workspace={"status_code": 404, "json": {}})[1],
         "the default workspace_id '8a868cd97d1e2f3b017d2f4a5b6c0001' does not exist", local=False),
    Case("test-anaplan-no-model", ANA, "remote answer", "Test: default `model_id` not in the workspace",
         lambda env: anaplan_test_with(env, model={"status_code": 404, "json": {}})[1],
         "the default model_id '75A40874E6B64FA3AE0743278996850F' does not exist", local=False),
    Case("test-anaplan-unreachable", ANA, "remote answer", "Test: `auth_url` on a closed port",
         lambda env: (real_network(env), ana(env, auth_url=closed_port()).test_connection())[1],
         "Check the extras 'auth_url' (login) and 'api_url'", local=False),
    Case("test-jss-unreachable", JOBS, "remote answer", "Test: service key `uaa.url` on a closed port",
         lambda env: (real_network(env), jss(env, key_with(url=closed_port())).test_connection())[1][1],
         "Check the service key's 'url' (API) and 'uaa.url'", local=False),
    Case("task-anaplan-html-404", ANA, "remote answer", "a task call answered by an HTML 404 page (wrong `api_url`)",
         lambda env: (token_ok(env), env.rm.get(f"{ANAPLAN_API}/workspaces/{WS}/models/{MODEL}/files", **HTML_404),
                      ana(env, workspace_id=WS, model_id=MODEL).list_files()),
         "the URL is probably not the platform's API URL; check the extras 'auth_url'", local=False),
    Case("task-anaplan-429", ANA, "remote answer", "a rate-limited call (429), as logged before each retry",
         lambda env: (token_ok(env), env.rm.get(f"{ANAPLAN_API}/workspaces", status_code=429),
                      ana(env).list_workspaces()), "The platform's rate limit was hit.", local=False),
    Case("task-anaplan-401-after-login", ANA, "remote answer", "the API refuses a freshly issued token (401 twice)",
         lambda env: (token_ok(env), env.rm.get(f"{ANAPLAN_API}/workspaces", status_code=401),
                      ana(env).list_workspaces()), "Anaplan rejected the token of a fresh login", local=False),
    # Task arguments and templates (core validators; the operators call them when built or rendered)
    Case("tpl-dict-python-repr", CORE, "template", "`data=\"{{ params.payload }}\"` rendered to `{'a': 1}`",
         lambda env: v.as_json_object("{'a': 1}", "data"), "render_template_as_native_obj=True"),
    Case("tpl-dict-json-list", CORE, "template", "`mapping_parameters` rendered to `[1, 2]`",
         lambda env: v.as_json_object("[1, 2]", "mapping_parameters"), "holds a JSON list"),
    Case("arg-dict-int", CORE, "argument", "`data=5`", lambda env: v.as_json_object(5, "data"),
         "data must be a dict, got int 5"),
    Case("arg-poll-interval-10s", CORE, "argument", "`poll_interval=\"10s\"`",
         lambda env: v.as_duration("10s", "poll_interval"), "write e.g. 10 or timedelta(minutes=5)"),
    Case("arg-timeout-negative", CORE, "argument", "`timeout=-1`", lambda env: v.as_duration(-1, "timeout"),
         "timeout must be > 0, got -1"),
    Case("arg-timeout-zero", CORE, "argument", "`timeout=0`", lambda env: v.as_duration(0, "timeout"),
         "timeout must be > 0, got 0"),
    Case("arg-timeout-timedelta-negative", CORE, "argument", "`timeout=timedelta(seconds=-5)`",
         lambda env: v.as_duration(datetime.timedelta(seconds=-5), "timeout"), "timeout must be > 0"),
    Case("arg-timeout-nan", CORE, "argument", "`timeout=float(\"nan\")`",
         lambda env: v.positive_number(float("nan"), "timeout"), "timeout must be > 0"),
    Case("arg-active-string", CORE, "argument", "`active=\"false\"`", lambda env: v.as_bool("false", "active"),
         "a non-empty string counts as True"),
    Case("arg-active-int", CORE, "argument", "`active=1`", lambda env: v.as_bool(1, "active"),
         "active must be True or False, got int 1"),
    Case("arg-job-id-abc", CORE, "argument", "`job_id=\"abc\"`", lambda env: v.as_int_id("abc", "job_id"),
         "job_id must be a whole number id (e.g. 42)"),
    Case("arg-job-id-bool", CORE, "argument", "`job_id=True`", lambda env: v.as_int_id(True, "job_id"),
         "job_id must be a whole number id"),
    Case("arg-job-id-negative", CORE, "argument", "`job_id=-3`", lambda env: v.as_int_id(-3, "job_id"),
         "job_id must be a positive id"),
    Case("arg-max-parallel-zero", CORE, "argument", "`max_parallel=0`",
         lambda env: v.as_positive_int(0, "max_parallel", maximum=16), "max_parallel must be between 1 and 16, got 0"),
    Case("arg-max-parallel-text", CORE, "argument", "`max_parallel=\"four\"`",
         lambda env: v.as_positive_int("four", "max_parallel"), "max_parallel must be a whole number, got str 'four'"),
    Case("arg-chunk-size-10mb", CORE, "argument", "`chunk_size=\"10MB\"`",
         lambda env: v.as_chunk_size("10MB", "chunk_size", minimum=2**20, maximum=50 * 2**20),
         "write e.g. 10 * 1024 * 1024 for 10 MiB"),
    Case("arg-chunk-size-too-small", CORE, "argument", "`chunk_size=100`",
         lambda env: v.as_chunk_size(100, "chunk_size", minimum=2**20, maximum=50 * 2**20),
         "chunk_size must be between 1048576 and 52428800 bytes (1-50 MiB), got 100"),
    Case("arg-chunk-size-float", CORE, "argument", "`chunk_size=1.5e6`",
         lambda env: v.as_chunk_size(1.5e6, "chunk_size", minimum=2**20, maximum=50 * 2**20),
         "must be a whole number of bytes"),
    # Operator and sensor arguments, checked when the task is built or right after rendering (issue 8 item 7)
    Case("op-ana-timeout-negative", ANA, "argument", "`AnaplanRunImportOperator(timeout=-1)`",
         lambda env: ana_op(env, "import", timeout=-1), "timeout must be > 0, got -1"),
    Case("op-ana-timeout-zero", ANA, "argument", "`AnaplanRunImportOperator(timeout=0)`",
         lambda env: ana_op(env, "import", timeout=0), "timeout must be > 0, got 0"),
    Case("op-jss-timeout-zero", JOBS, "argument", "`SapJobSchedulingRunJobOperator(timeout=0)`",
         lambda env: jss_op(env, "run", job_id=5, timeout=0), "timeout must be > 0, got 0"),
    Case("op-poll-interval-10s", CORE, "argument", "`poll_interval=\"10s\"` on a run operator",
         lambda env: jss_op(env, "run", job_id=5, poll_interval="10s"), "poll_interval must be seconds as a number"),
    Case("op-max-poll-below-poll", CORE, "argument", "`poll_interval=60, max_poll_interval=10`",
         lambda env: ana_op(env, "import", poll_interval=60, max_poll_interval=10), "must not be below poll_interval"),
    Case("op-wait-for-completion-string", CORE, "argument", "`wait_for_completion=\"false\"`",
         lambda env: ana_op(env, "import", wait_for_completion="false"), "wait_for_completion must be True or False"),
    Case("op-deferrable-string", CORE, "argument", "`deferrable=\"yes\"`",
         lambda env: jss_op(env, "run", job_id=5, deferrable="yes"), "deferrable must be True or False"),
    Case("op-cancel-on-kill-int", CORE, "argument", "`cancel_on_kill=0`",
         lambda env: ana_op(env, "import", cancel_on_kill=0), "cancel_on_kill must be True or False"),
    Case("op-outage-window-negative", CORE, "argument", "`outage_window=-5`",
         lambda env: ana_op(env, "import", outage_window=-5), "outage_window must be >= 0"),
    Case("op-sensor-poke-interval-10s", CORE, "argument", "sensor `poke_interval=\"10s\"`",
         lambda env: __import__("airflow_provider_sapplan.sensors.sap_job_scheduling", fromlist=["x"]).SapJobSchedulingRunSensor(
             task_id="s", job_id=5, schedule_id="s1", poke_interval="10s"), "poke_interval must be seconds"),
    Case("op-sensor-outage-window-string", CORE, "argument", "sensor `outage_window=\"15m\"`",
         lambda env: __import__("airflow_provider_sapplan.sensors.sap_job_scheduling", fromlist=["x"]).SapJobSchedulingRunSensor(
             task_id="s", job_id=5, schedule_id="s1", outage_window="15m"), "outage_window must be seconds"),
    Case("op-jss-active-false-string", JOBS, "argument", "`SapJobSchedulingSetActiveOperator(active=\"false\")`",
         lambda env: jss_op(env, "active", job_id=5, active="false"), "a non-empty string counts as True"),
    Case("op-jss-job-id-abc", JOBS, "argument", "`SapJobSchedulingDeleteJobOperator(job_id=\"abc\")`",
         lambda env: jss_op(env, "delete", job_id="abc"), "job_id must be a whole number id (e.g. 42)"),
    Case("op-jss-job-id-and-name", JOBS, "argument", "both `job_id` and `job_name`",
         lambda env: jss_op(env, "delete", job_id=5, job_name="x"), "Give exactly one of job_id or job_name"),
    Case("op-jss-job-list", JOBS, "argument", "`SapJobSchedulingCreateJobOperator(job=[...])`",
         lambda env: jss_op(env, "create", job=["name", "x"]), "job must be a dict, got list"),
    Case("op-ana-chunk-size-10mb", ANA, "argument", "`AnaplanUploadFileOperator(chunk_size=\"10MB\")`",
         lambda env: ana_op(env, "upload", chunk_size="10MB"), "write e.g. 10 * 1024 * 1024 for 10 MiB"),
    Case("op-ana-compress-string", ANA, "argument", "`AnaplanUploadFileOperator(compress=\"yes\")`",
         lambda env: ana_op(env, "upload", compress="yes"), "compress must be True or False"),
    Case("op-ana-max-parallel-zero", ANA, "argument", "`AnaplanUploadFileOperator(max_parallel=0)`",
         lambda env: ana_op(env, "upload", max_parallel=0), "max_parallel must be between 1 and 32"),
    Case("op-ana-fail-on-warnings-string", ANA, "argument", "`fail_on_warnings=\"false\"`",
         lambda env: ana_op(env, "import", fail_on_warnings="false"), "fail_on_warnings must be True or False"),
    Case("op-ana-workspace-int", ANA, "argument", "`workspace_id=123`",
         lambda env: ana_op(env, "import", workspace_id=123), "workspace_id must be a string id"),
    Case("op-ana-locale-empty", ANA, "argument", "`locale=\"\"`",
         lambda env: ana_op(env, "import", locale=""), "locale must be an Anaplan locale name"),
    Case("path-upload-source-directory", ANA, "path", "upload `source=\"/tmp\"` (a directory)",
         lambda env: ana_op(env, "upload", source="/tmp").execute(_ctx()), "is a directory; give the path of one file"),
    Case("path-upload-source-missing", ANA, "path", "upload `source` that does not exist",
         lambda env: ana_op(env, "upload", source="/nonexistent-sapplan/data.csv").execute(_ctx()), "does not exist or is not a file"),
    Case("path-upload-unknown-scheme", ANA, "path", "upload `source=\"foo://bucket/data.csv\"`",
         lambda env: ana_op(env, "upload", source="foo://bucket/data.csv").execute(_ctx()), "uses the storage scheme 'foo'"),
    Case("path-upload-s3-without-amazon", ANA, "path", "upload from `s3://` without the Amazon provider",
         lambda env: ana_op(env, "upload", source="s3://bucket/data.csv").execute(_ctx()), "apache-airflow-providers-amazon"),
    Case("path-upload-source-int", ANA, "path", "upload `source=5`",
         lambda env: ana_op(env, "upload", source=5), "source must be a path or URI string"),
    Case("path-download-to-directory", ANA, "path", "download `destination=\"/tmp\"` (a directory)",
         lambda env: ana_op(env, "download", destination="/tmp").execute(_ctx()), "is a directory; give the path of the file to write"),
    Case("path-export-to-directory", ANA, "path", "export `destination=\"/tmp\"` (before the export runs)",
         lambda env: ana_op(env, "export", destination="/tmp").execute(_ctx()), "destination '/tmp' is a directory"),
    Case("path-export-unknown-scheme", ANA, "path", "export `destination=\"foo://b/x.csv\"`",
         lambda env: ana_op(env, "export", destination="foo://b/x.csv").execute(_ctx()), "uses the storage scheme 'foo'"),
    Case("path-dump-destination-file", ANA, "path", "`dump_destination` that is a file (`/etc/passwd`)",
         lambda env: ana_op(env, "import", dump_destination="/etc/passwd").execute(_ctx()), "is a file; give a folder"),
    # Templated dicts, after rendering (issue 8 item 9)
    Case("tpl-op-data-python-repr", JOBS, "template", "`data=\"{{ params.payload }}\"` with a dict param",
         lambda env: _render(jss_op(env, "run", job_id=5, data="{{ params.payload }}"), payload={"a": 1}),
         "render_template_as_native_obj=True"),
    Case("tpl-op-mapping-python-repr", ANA, "template", "`mapping_parameters=\"{{ params.m }}\"` with a dict param",
         lambda env: _render(ana_op(env, "import", mapping_parameters="{{ params.m }}"), m={"Version": "Actual"}),
         "render_template_as_native_obj=True"),
    Case("tpl-op-mapping-non-string", ANA, "template", "`mapping_parameters` rendered to `{\"Version\": 1}`",
         lambda env: _render(ana_op(env, "import", mapping_parameters="{{ params.m }}"), m='{"Version": 1}'),
         "must map entity types to entity names (strings)"),
    Case("tpl-op-job-json-list", JOBS, "template", "`job=\"{{ params.job }}\"` rendered to a JSON list",
         lambda env: _render(jss_op(env, "create", job="{{ params.job }}"), job="[1, 2]"), "holds a JSON list"),
    Case("tpl-op-job-id-abc", JOBS, "template", "`job_id=\"{{ params.job }}\"` rendered to `abc`",
         lambda env: _render(jss_op(env, "run", job_id="{{ params.job }}"), job="abc"), "job_id must be a whole number id"),
]  # fmt: skip


def run_case(case: Case, mp: pytest.MonkeyPatch, rm: Any) -> str:
    """Provoke the case; the message the user gets (error message, or the Test button's answer)."""
    env = SimpleNamespace(mp=mp, rm=rm)
    mp.setattr("airflow_provider_sapplan.core.http.time.sleep", lambda seconds: None)
    try:
        result = case.run(env)
    except Exception as err:  # every case must fail; the message is what the user reads
        return str(getattr(err, "message", None) or err)
    if isinstance(result, str):
        return result
    if isinstance(result, tuple) and len(result) == 2 and result[0] is False:  # the Test button's answer
        return str(result[1])
    raise AssertionError(f"{case.id}: no error for a wrong input (got {result!r})")


def as_row(message: str) -> str:
    """A message as a table cell: pipes escaped, one line, the random local test port replaced."""
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", message.replace("|", "\\|").replace("\n", " "))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    requests_mock.real_http = False
    message = run_case(case, monkeypatch, requests_mock)
    assert case.expect in message, message
    assert "FFtFoykL" not in message
    if case.local:
        assert requests_mock.call_count == 0, f"{case.id} reached the network before failing"
    row_message = as_row(message)
    assert f"| {row_message} |" in _document(), (
        f"{case.id}: the message changed; regenerate docs/bad-inputs.md (python -m tests.unit.test_bad_inputs)"
    )


@functools.cache
def _document() -> str:
    from pathlib import Path

    return (Path(__file__).resolve().parents[2] / "docs" / "bad-inputs.md").read_text()


def test_the_catalogue_is_large_enough_and_ids_are_unique() -> None:
    assert len(CASES) >= 50
    assert len({case.id for case in CASES}) == len(CASES)


def render_catalogue() -> str:
    """The Markdown catalogue, with the messages of a real run of every case."""
    import requests_mock

    lines = [
        "# Wrong inputs and the messages they give",
        "",
        "Every row is one wrong input a user can make with the Anaplan or SAP BTP Job Scheduling parts of the",
        "provider, the message they get (copied from a real run; the test fails when a message changes and",
        "this page is not regenerated), and the test that checks it. *Local* rows fail before any HTTP",
        "request is sent (the test asserts it); the others need the platform's answer. Test-button rows show",
        "what the Airflow UI's Test button says.",
        "",
        "Regenerate after changing a message: `python -m tests.unit.test_bad_inputs docs/bad-inputs.md`.",
        "",
        "| # | Platform | Kind | Wrong input | Message the user gets | Local | Test |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, case in enumerate(CASES, 1):
        with pytest.MonkeyPatch.context() as mp, requests_mock.Mocker() as rm:
            from airflow_provider_sapplan.core.auth import TOKEN_CACHE

            TOKEN_CACHE.clear()
            message = run_case(case, mp, rm)
        cells = [
            str(number),
            case.platform,
            case.kind,
            case.given,
            as_row(message),
            "yes" if case.local else "no",
            f"`{TEST_FILE}[{case.id}]`",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += FOOTER.splitlines()
    return "\n".join(lines) + "\n"


FOOTER = """
## What is checked where

* **Connections** are validated by `core.validation.validate_client_config` (URLs with their field names,
  timeouts, `verify`, the auth scheme's identity key) when a hook builds its client, before any request.
  A malformed URL is a `ConnectionConfigError` at once, never a network error retried for minutes.
* **Certificates and keys** (`core.tls.read_pem`) may be PEM text (escaped `\\n` accepted) or the path of
  a PEM file; a missing path is reported as a missing file and never sent anywhere.
* **Task arguments and templated dicts** use the `core.validation` helpers (`as_json_object`,
  `as_duration`, `positive_number`, `as_bool`, `as_int_id`, `as_positive_int`, `as_chunk_size`), which raise `ArgumentError`
  (a `ValueError`) naming the argument.

## Authentication failures are not retried

`AuthenticationError` is an `AirflowFailException`: a rejected login fails the task at once, without
its Airflow retries, because Anaplan and SAP BTP lock accounts after repeated failed logins. Fix the
connection, press Test, then clear the task.

## How long an unreachable host is retried

| Where | Sends | Longest total wait between sends | With a 10 s connect timeout per send |
|---|---|---|---|
| Test button (every platform) | 1 per call | none | answers within 15 s whatever happens (5 s connect, 8 s read) |
| Default policy (SAP Job Scheduling) | 6 | 31 s (1+2+4+8+16) | 91 s |
| Anaplan (waits out busy/locked models too) | 8 | 246 s (2+4+8+16+32+64+120) | 326 s |

`RetryPolicy.worst_case_wait()` and `worst_case_seconds(connect_timeout)` compute these figures; a test
pins them. A server's `Retry-After` is honoured up to the policy's `max_wait` per wait.
"""


if __name__ == "__main__":
    import os
    import tempfile

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="sapplan-catalogue-"))
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    import sys
    from pathlib import Path

    # Airflow logs to stdout while the cases run, so the document is written to the file given.
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/bad-inputs.md")
    target.write_text(render_catalogue())
    print(f"Wrote {target} ({len(CASES)} cases).")


def test_the_catalogue_document_lists_every_case() -> None:
    from pathlib import Path

    document = (Path(__file__).resolve().parents[2] / "docs" / "bad-inputs.md").read_text()
    missing = [case.id for case in CASES if f"[{case.id}]`" not in document]
    assert not missing, (
        f"regenerate docs/bad-inputs.md (python -m tests.unit.test_bad_inputs docs/bad-inputs.md): {missing}"
    )
