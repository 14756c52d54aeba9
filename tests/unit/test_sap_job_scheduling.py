"""SAP BTP Job Scheduling hook, operators, sensor and trigger with mocked HTTP."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan._compat import AIRFLOW_V_3_3_PLUS, TaskDeferred
from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    InvalidRequestError,
    NameResolutionError,
    RemoteJobFailedError,
    SapplanError,
)
from airflow_provider_sapplan.hooks.sap_job_scheduling import (
    SapJobSchedulingHook,
    parse_timestamp,
    validate_job,
)
from airflow_provider_sapplan.jobs.sap_job_scheduling import run_outcome
from airflow_provider_sapplan.operators.sap_job_scheduling import (
    SapJobSchedulingCreateJobOperator,
    SapJobSchedulingDeleteJobOperator,
    SapJobSchedulingRunJobOperator,
    SapJobSchedulingSetActiveOperator,
)
from airflow_provider_sapplan.sensors.sap_job_scheduling import SapJobSchedulingRunSensor
from airflow_provider_sapplan.triggers.sap_job_scheduling import SapJobSchedulingRunTrigger
from tests.conftest import set_connection

API = "https://jobscheduler-rest.test"
UAA = "https://tenant.authentication.test"
CLIENT_ID = "sb-x!b1|jobscheduler!b1"
SERVICE_KEY = {"url": API, "uaa": {"url": UAA, "clientid": CLIENT_ID, "clientsecret": "top-secret"}}
JOB = {"name": "refresh", "action": "https://app.test/refresh", "httpMethod": "POST"}
REF = {"job_id": 3, "schedule_id": "sched-1"}
RUNS = f"{API}/scheduler/jobs/3/schedules/sched-1/runs"


def run(state: str, status: str = "COMPLETED", **extra: Any) -> dict[str, Any]:
    return {"runId": "run-1", "runStatus": status, "runState": state, "httpStatus": 200, "runText": "OK", **extra}


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr("airflow_provider_sapplan.core.http.time.sleep", recorded.append)
    return recorded


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, requests_mock: Any, sleeps: list[float]) -> Any:
    set_connection(
        monkeypatch, "sap_job_scheduling_default", conn_type="sap_job_scheduling", extra={"service_key": SERVICE_KEY}
    )
    requests_mock.post(
        f"{UAA}/oauth/token", json={"access_token": "jwt-1", "token_type": "bearer", "expires_in": 43199}
    )
    return requests_mock


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": mock.MagicMock()}


# -- connection and auth ------------------------------------------------------------------------


def test_client_credentials_token_is_fetched_once(api: Any) -> None:
    api.get(f"{API}/scheduler/jobs", json={"total": 0, "results": []})
    hook = SapJobSchedulingHook()
    hook.list_jobs()
    SapJobSchedulingHook().list_jobs()
    token_calls = [r for r in api.request_history if r.url.startswith(UAA)]
    assert len(token_calls) == 1
    assert (
        token_calls[0].headers["Authorization"]
        == "Basic " + base64.b64encode(f"{CLIENT_ID}:top-secret".encode()).decode()
    )
    assert token_calls[0].text == "grant_type=client_credentials"
    assert api.request_history[-1].headers["Authorization"] == "Bearer jwt-1"


def test_service_key_as_json_text(monkeypatch: pytest.MonkeyPatch, api: Any) -> None:
    set_connection(
        monkeypatch, "jss_text", conn_type="sap_job_scheduling", extra={"service_key": json.dumps(SERVICE_KEY)}
    )
    api.get(f"{API}/scheduler/jobs", json={"total": 4, "results": []})
    assert SapJobSchedulingHook("jss_text").test_connection() == (
        True,
        "Connected to SAP Job Scheduling; 4 job(s) defined.",
    )


@pytest.mark.parametrize(
    ("key", "missing"),
    [
        ({"uaa": SERVICE_KEY["uaa"]}, "'url'"),
        ({"url": API, "uaa": {"url": UAA, "clientid": CLIENT_ID}}, "uaa.clientsecret"),
        ({"url": API, "uaa": {"url": UAA, "clientsecret": "x"}}, "uaa.clientid"),
        ({"url": API, "uaa": {"clientid": CLIENT_ID, "certificate": "C", "key": "K"}}, "uaa.certurl"),
        ("{not json", "not valid JSON"),
    ],
    ids=["url", "clientsecret", "clientid", "certurl", "bad-json"],
)
def test_malformed_service_key_names_the_missing_field(monkeypatch: pytest.MonkeyPatch, key: Any, missing: str) -> None:
    set_connection(monkeypatch, "jss_bad", conn_type="sap_job_scheduling", extra={"service_key": key})
    with pytest.raises(ConnectionConfigError, match=re.escape(missing)):
        SapJobSchedulingHook("jss_bad").get_conn()


def test_no_service_key_explains_both_options(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "jss_empty", conn_type="sap_job_scheduling")
    with pytest.raises(ConnectionConfigError, match=r"service key JSON.*lite plan"):
        SapJobSchedulingHook("jss_empty").get_conn()


def test_x509_service_key_uses_client_certificate(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    key = {
        "url": API,
        "uaa": {
            "clientid": CLIENT_ID,
            "certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
            "certurl": "https://cert.test",
        },
    }
    set_connection(monkeypatch, "jss_x509", conn_type="sap_job_scheduling", extra={"service_key": key})
    requests_mock.post("https://cert.test/oauth/token", json={"access_token": "jwt-x", "expires_in": 600})
    requests_mock.get(f"{API}/scheduler/jobs/1", json={"_id": 1})
    SapJobSchedulingHook("jss_x509").get_job(1)
    token_call = requests_mock.request_history[0]
    assert "client_id=" in token_call.text and "Authorization" not in token_call.headers
    cert_file, key_file = token_call.cert
    assert Path(cert_file).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert Path(key_file).stat().st_mode & 0o777 == 0o600


def test_lite_plan_basic_auth(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    set_connection(monkeypatch, "jss_lite", conn_type="sap_job_scheduling", host=API, login="user", password="pw-123")
    requests_mock.get(f"{API}/scheduler/jobs/1", json={"_id": 1})
    SapJobSchedulingHook("jss_lite").get_job(1)
    assert (
        requests_mock.request_history[-1].headers["Authorization"]
        == "Basic " + base64.b64encode(b"user:pw-123").decode()
    )


def test_bad_client_secret_is_an_authentication_error(api: Any) -> None:
    api.post(f"{UAA}/oauth/token", status_code=401, json={"error": "unauthorized"})
    with pytest.raises(AuthenticationError, match="rejected the credentials"):
        SapJobSchedulingHook().get_job(1)


# -- rate limits and paging -----------------------------------------------------------------------


def test_429_retry_after_and_503_throttling_are_waited_out(api: Any, sleeps: list[float]) -> None:
    api.get(
        f"{API}/scheduler/jobs/1",
        [
            {"status_code": 429, "headers": {"retry-after": "4"}},
            {"status_code": 503, "headers": {"throttling": "2500"}},
            {"json": {"_id": 1}},
        ],
    )
    assert SapJobSchedulingHook().get_job(1) == {"_id": 1}
    assert sleeps == [4.0, 2.5]


def test_run_now_is_retried_on_429_but_not_on_read_timeout(api: Any, sleeps: list[float]) -> None:
    import requests

    url = f"{API}/scheduler/jobs/3/schedules"
    api.post(
        url, [{"status_code": 429, "headers": {"retry-after": "1"}}, {"status_code": 201, "json": {"scheduleId": "s"}}]
    )
    assert SapJobSchedulingHook().run_now(3)["scheduleId"] == "s"
    api.post(url, exc=requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(SapplanError):
        SapJobSchedulingHook().run_now(3)
    assert sum(r.url == url for r in api.request_history) == 3  # 2 + 1: the timeout was not retried


def test_list_jobs_pages_through_offsets(api: Any) -> None:
    def page(request: Any, context: Any) -> dict[str, Any]:
        offset, size = int(request.qs["offset"][0]), int(request.qs["page_size"][0])
        assert size <= 100
        return {"total": 230, "results": [{"_id": i} for i in range(offset, min(offset + size, 230))]}

    api.get(f"{API}/scheduler/jobs", json=page)
    assert [j["_id"] for j in SapJobSchedulingHook().list_jobs()] == list(range(230))


# -- validation, timestamps, outcomes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"name": "x"}, "lacks action, httpMethod"),
        ({**JOB, "httpMethod": "FETCH"}, "httpMethod 'FETCH'"),
        ({**JOB, "schedules": [{"cron": "0 6 * * *"}]}, "has 5 fields.*Year Month Day"),
        ({**JOB, "schedules": [{"time": "now", "repeatInterval": "5 minutes"}]}, "exactly one of"),
        ({**JOB, "schedules": [{"description": "nothing"}]}, "has none"),
        ({**JOB, "description": "x" * 110_000}, "at most 102400"),
    ],
    ids=["required", "method", "cron-order", "two-kinds", "no-kind", "100kb"],
)
def test_job_validation(job: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        validate_job(job)


def test_both_timestamp_formats_parse_as_utc() -> None:
    a = parse_timestamp("2015-11-14T04:19:22")
    b = parse_timestamp("2015-11-14 04:19:22")
    assert a == b and a is not None and a.tzinfo is not None and a.hour == 4
    assert parse_timestamp(None) is None


@pytest.mark.parametrize(
    ("run_doc", "outcome"),
    [
        (run("SCHEDULED", "SCHEDULED"), "running"),
        (run("TRIGGERED", "RUNNING"), "running"),
        (run("ACK_RECVD", "RUNNING"), "running"),
        (run("ACK_NOT_RECVD", "RUNNING"), "running"),
        (run("SUCCESS"), "succeeded"),
        (run("ERROR"), "failed"),
        (run("REQUEST_ERROR"), "failed"),
        (run("UNKNOWN"), "failed"),
        (run("TIMEOUT"), "failed"),
    ],
)
def test_run_outcomes(run_doc: dict[str, Any], outcome: str) -> None:
    assert run_outcome(run_doc).value == outcome


# -- operators -------------------------------------------------------------------------------------


def test_run_job_by_name_defers_after_pushing_ids(api: Any, context: dict[str, Any]) -> None:
    api.get(f"{API}/scheduler/jobs?name=refresh", json={"_id": 3, "name": "refresh"})
    api.post(f"{API}/scheduler/jobs/3/schedules", status_code=201, json={"scheduleId": "sched-1", "type": "one-time"})
    api.get(RUNS, json={"total": 0, "results": []})
    op = SapJobSchedulingRunJobOperator(task_id="run", job_name="refresh", data={"period": "2026-01"}, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert isinstance(deferred.value.trigger, SapJobSchedulingRunTrigger)
    assert deferred.value.trigger.ref == REF and deferred.value.timeout is None
    context["ti"].xcom_push.assert_any_call(key="sap_job_scheduling_run", value=REF)
    body = next(r for r in api.request_history if r.method == "POST" and r.url.endswith("/schedules")).json()
    assert body["time"] == "now" and body["data"] == {"period": "2026-01"} and body["active"] is True


def test_run_job_unknown_name_lists_jobs(api: Any, context: dict[str, Any]) -> None:
    api.get(f"{API}/scheduler/jobs?name=refrsh", status_code=404, json={"code": 404, "message": "not found"})
    api.get(
        re.compile(f"{API}/scheduler/jobs\\?page_size"), json={"total": 1, "results": [{"_id": 3, "name": "refresh"}]}
    )
    with pytest.raises(NameResolutionError, match="'refresh'"):
        SapJobSchedulingRunJobOperator(task_id="run", job_name="refrsh").execute(context)


def test_run_job_polls_in_worker(api: Any, context: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda s: None)
    api.post(f"{API}/scheduler/jobs/3/schedules", status_code=201, json={"scheduleId": "sched-1"})
    api.get(
        RUNS,
        [
            {"json": {"results": []}},
            {"json": {"results": [run("TRIGGERED", "RUNNING")]}},
            {"json": {"results": [run("SUCCESS")]}},
        ],
    )
    result = SapJobSchedulingRunJobOperator(task_id="run", job_id=3, deferrable=False).execute(context)
    assert result["runState"] == "SUCCESS" and result["schedule_id"] == "sched-1"


@pytest.mark.parametrize("state", ["ERROR", "REQUEST_ERROR", "UNKNOWN", "TIMEOUT"])
def test_failed_runs_name_http_status_and_text(state: str, context: dict[str, Any]) -> None:
    event = {"status": "failed", "ref": REF, "result": run(state, httpStatus=404, runText="Response: Cannot PUT /x")}
    with pytest.raises(RemoteJobFailedError, match=f"COMPLETED/{state} with HTTP status 404: Response: Cannot PUT /x"):
        SapJobSchedulingRunJobOperator(task_id="run", job_id=3).execute_complete(context, event)


def test_timeout_deactivates_the_schedule(api: Any, context: dict[str, Any]) -> None:
    api.put(f"{API}/scheduler/jobs/3/schedules/sched-1", json={"success": True})
    with pytest.raises(SapplanError, match="timeout"):
        SapJobSchedulingRunJobOperator(task_id="run", job_id=3, timeout=30).execute_complete(
            context, {"status": "timeout", "ref": REF, "raw_state": "RUNNING/ACK_NOT_RECVD"}
        )
    assert api.request_history[-1].json() == {"active": False}


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="durable execution needs Airflow 3.3+")
def test_durable_retry_reconnects_to_its_schedule(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda s: None)
    api.get(RUNS, [{"json": {"results": [run("TRIGGERED", "RUNNING")]}}, {"json": {"results": [run("SUCCESS")]}}])
    store = mock.MagicMock(spec_set=["get", "set"])
    store.get.return_value = REF
    result = SapJobSchedulingRunJobOperator(task_id="run", job_id=3, deferrable=False).execute(
        {"ti": mock.MagicMock(stats_tags={}), "task_state_store": store}
    )
    assert result["runState"] == "SUCCESS"
    assert not any(r.method == "POST" and "/schedules" in r.url for r in api.request_history)


def test_create_job_twice_leaves_one_job(api: Any, context: dict[str, Any]) -> None:
    api.get(
        f"{API}/scheduler/jobs?name=refresh",
        [{"status_code": 404, "json": {}}, {"json": {"_id": 7, "name": "refresh"}}],
    )
    api.post(f"{API}/scheduler/jobs", status_code=201, json={"_id": 7, "name": "refresh"})
    api.put(f"{API}/scheduler/jobs/7", json={"success": True})
    op = SapJobSchedulingCreateJobOperator(task_id="ensure", job=JOB)
    assert op.execute(context) == 7
    assert op.execute(context) == 7
    assert sum(r.method == "POST" for r in api.request_history if r.url.endswith("/scheduler/jobs")) == 1
    assert sum(r.method == "PUT" for r in api.request_history) == 1


def test_delete_job_is_idempotent(api: Any, context: dict[str, Any]) -> None:
    api.delete(f"{API}/scheduler/jobs/7", [{"json": {"success": True}}, {"status_code": 404, "json": {}}])
    op = SapJobSchedulingDeleteJobOperator(task_id="delete", job_id=7)
    assert op.execute(context) is True
    assert op.execute(context) is False


def test_set_active_posts_activation_status(api: Any, context: dict[str, Any]) -> None:
    api.post(f"{API}/scheduler/jobs/3/schedules/activationStatus", json={"success": True})
    SapJobSchedulingSetActiveOperator(task_id="off", job_id=3, active=False).execute(context)
    assert api.request_history[-1].json() == {"activationStatus": False}


def test_operators_need_exactly_one_job_reference() -> None:
    with pytest.raises(ValueError, match="exactly one of job_id or job_name"):
        SapJobSchedulingRunJobOperator(task_id="x")
    with pytest.raises(ValueError, match="exactly one of job_id or job_name"):
        SapJobSchedulingDeleteJobOperator(task_id="x", job_id=1, job_name="a")


def test_sensor_pokes_and_fails_on_error(api: Any, context: dict[str, Any]) -> None:
    api.get(
        RUNS,
        [{"json": {"results": [run("TRIGGERED", "RUNNING")]}}, {"json": {"results": [run("ERROR", httpStatus=500)]}}],
    )
    sensor = SapJobSchedulingRunSensor(task_id="wait", job_id=3, schedule_id="sched-1")
    assert sensor.poke(context) is False
    with pytest.raises(RemoteJobFailedError, match="HTTP status 500"):
        sensor.poke(context)


# -- trigger ----------------------------------------------------------------------------------------


def test_trigger_serializes_ids_only() -> None:
    trigger = SapJobSchedulingRunTrigger(conn_id="sap_job_scheduling_default", ref=REF, poll_interval=5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_sapplan.triggers.sap_job_scheduling.SapJobSchedulingRunTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs and "secret" not in json.dumps(kwargs)


@pytest.mark.parametrize(
    ("state", "status"), [("SUCCESS", "success"), ("REQUEST_ERROR", "failed"), ("UNKNOWN", "failed")]
)
async def test_trigger_events(state: str, status: str) -> None:
    with mock.patch.object(SapJobSchedulingHook, "acurrent_run", mock.AsyncMock(return_value=run(state))):
        events = [e async for e in SapJobSchedulingRunTrigger(conn_id="c", ref=REF).run()]
    assert [e.payload["status"] for e in events] == [status]
    assert events[0].payload["raw_state"] == f"COMPLETED/{state}" and events[0].payload["schedule_id"] == "sched-1"


async def test_trigger_on_kill_deactivates_schedule() -> None:
    deactivate = mock.AsyncMock()
    with mock.patch.object(SapJobSchedulingHook, "aset_schedule_active", deactivate):
        await SapJobSchedulingRunTrigger(conn_id="c", ref=REF).on_kill()
    deactivate.assert_awaited_once_with(3, "sched-1", False)


def test_run_result_normalises_both_timestamp_formats(context: dict[str, Any]) -> None:
    event = {
        "status": "success",
        "ref": REF,
        "result": run("SUCCESS", executionTimestamp="2026-11-22 06:00:01", completionTimestamp="2026-11-22T06:00:09"),
    }
    result = SapJobSchedulingRunJobOperator(task_id="run", job_id=3).execute_complete(context, event)
    assert result["executionTimestamp"] == "2026-11-22T06:00:01+00:00"
    assert result["completionTimestamp"] == "2026-11-22T06:00:09+00:00"
