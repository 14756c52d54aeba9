"""SAP Data Intelligence hook, job semantics, operators, sensors and triggers with mocked HTTP."""

from __future__ import annotations

import base64
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_sapplan._compat import AIRFLOW_V_3_3_PLUS, TaskDeferred
from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    InvalidRequestError,
    PermissionDeniedError,
    RemoteJobFailedError,
)
from airflow_provider_sapplan.hooks.sap_data_intelligence import SapDataIntelligenceHook
from airflow_provider_sapplan.jobs.sap_data_intelligence import (
    RetryWatch,
    evaluate_change_request,
    evaluate_tasks,
    graph_outcome,
    graph_summary,
    parse_timestamp,
    task_summary,
)
from airflow_provider_sapplan.operators.sap_data_intelligence import (
    SapDataIntelligenceRestartFlowOperator,
    SapDataIntelligenceRunGraphOperator,
    SapDataIntelligenceStartFlowOperator,
    SapDataIntelligenceStopFlowOperator,
)
from airflow_provider_sapplan.sensors.sap_data_intelligence import (
    SapDataIntelligenceFlowSensor,
    SapDataIntelligenceGraphSensor,
)
from airflow_provider_sapplan.triggers.sap_data_intelligence import (
    SapDataIntelligenceChangeRequestTrigger,
    SapDataIntelligenceFlowTrigger,
    SapDataIntelligenceGraphTrigger,
)
from tests.conftest import set_connection

HOST = "https://di.test"
RMS = f"{HOST}/app/rms/api/dt/v1"
FLOW = f"{RMS}/replicationflows/RF_SALES"
GRAPHS = f"{HOST}/app/pipeline-modeler/service/v1/runtime/graphs"
DEFINITION = {"name": "RF_SALES", "oneSourceOneTargetTasks": [{"name": "VBAK"}, {"name": "VBAP"}]}
HTML = "<!DOCTYPE html><html><head><title>Sign In</title></head><body>logon</body></html>"


def zulu(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def task(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "status": status, "loadType": "REPLICATE", "active": status != "ERROR", **extra}


def cr_callback(*statuses: str, offset: float = 0.5) -> Any:
    """changerequeststatus answers, requested just after 'now' (i.e. ours), one status per call."""
    answers = list(statuses)

    def respond(request: Any, context: Any) -> dict[str, Any]:
        status = answers.pop(0) if len(answers) > 1 else answers[0]
        return {"requestType": "X", "status": status, "requestedAt": zulu(time.time() - offset)}

    return respond


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", slept.append)
    monkeypatch.setattr("airflow_provider_sapplan.core.http.time.sleep", slept.append)
    return slept


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> Any:
    set_connection(
        monkeypatch,
        "sap_data_intelligence_default",
        conn_type="sap_data_intelligence",
        host=HOST,
        login="default\\etl_user",
        password="pw",
        extra={"timezone": "Europe/Berlin"},
    )
    requests_mock.get(FLOW, json=DEFINITION)
    requests_mock.get(
        f"{RMS}/replicationflowMonitors", json=[{"name": "RF_SALES", "taskMetrics": {"deltaRunning": 2, "total": 2}}]
    )
    return requests_mock


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": mock.MagicMock()}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- connection and auth -------------------------------------------------------------------------


def test_basic_auth_tenant_backslash_user_and_header_on_every_request(api: Any) -> None:
    api.get(f"{RMS}/replicationflows", json=[{"name": "RF_SALES"}])
    hook = SapDataIntelligenceHook()
    assert "1 replication flow" in hook.check_connection()
    hook.get_flow("RF_SALES")
    assert len(api.request_history) == 2
    for request in api.request_history:
        assert request.headers["Authorization"] == basic("default\\etl_user", "pw")
        assert request.headers["X-Requested-With"] == "Fetch"


def test_tenant_from_extra(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    set_connection(
        monkeypatch,
        "di",
        conn_type="sap_data_intelligence",
        host="di.test",
        login="etl_user",
        password="pw",
        extra={"tenant": "acme"},
    )
    requests_mock.get(f"{RMS}/replicationflows", json=[])
    SapDataIntelligenceHook("di").list_flows()
    assert requests_mock.last_request.headers["Authorization"] == basic("acme\\etl_user", "pw")


def test_login_without_tenant_names_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "di", conn_type="sap_data_intelligence", host=HOST, login="etl_user", password="pw")
    with pytest.raises(ConnectionConfigError, match=r"tenant\\user"):
        SapDataIntelligenceHook("di").get_conn()


def test_bad_timezone_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(
        monkeypatch,
        "di",
        conn_type="sap_data_intelligence",
        host=HOST,
        login="t\\u",
        password="p",
        extra={"timezone": "Mars/Base"},
    )
    with pytest.raises(ConnectionConfigError, match="IANA"):
        SapDataIntelligenceHook("di").get_conn()


def test_html_logon_page_on_200_is_authentication_error_naming_login_format(api: Any) -> None:
    api.get(f"{RMS}/replicationflows", text=HTML, headers={"Content-Type": "text/html"})
    with pytest.raises(AuthenticationError) as err:
        SapDataIntelligenceHook().list_flows()
    assert "tenant\\user" in err.value.message and "HTML" in err.value.message


def test_403_explains_the_header(api: Any) -> None:
    api.get(f"{RMS}/replicationflows", status_code=403, text="Forbidden")
    with pytest.raises(PermissionDeniedError, match="X-Requested-With"):
        SapDataIntelligenceHook().list_flows()


def test_custom_rms_api_path(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    set_connection(
        monkeypatch,
        "di",
        conn_type="sap_data_intelligence",
        host=HOST,
        login="t\\u",
        password="p",
        extra={"rms_api_path": "rms/v2/"},
    )
    requests_mock.get(f"{HOST}/rms/v2/replicationflows", json=[])
    assert SapDataIntelligenceHook("di").list_flows() == []


def test_flow_monitor_always_array(api: Any) -> None:
    api.get(f"{RMS}/replicationflowMonitors?name=RF_SALES", json=[{"name": "RF_SALES", "taskMetrics": {"total": 2}}])
    assert SapDataIntelligenceHook().flow_monitor("RF_SALES")["taskMetrics"] == {"total": 2}
    assert api.last_request.qs == {"name": ["rf_sales"]} or api.last_request.query.lower() == "name=rf_sales"


def test_selective_request_validates_names_first_and_sends_array(api: Any) -> None:
    put = api.put(FLOW, status_code=202, json={"url": "/api/dt/v1/replicationflows/RF_SALES/changerequeststatus"})
    hook = SapDataIntelligenceHook()
    with pytest.raises(InvalidRequestError, match=r"no task\(s\) 'MARA'.*'VBAK', 'VBAP'"):
        hook.validate_task_names("RF_SALES", ["VBAK", "MARA"])
    assert not put.called
    hook.request_change("RF_SALES", "RUN_OR_RESUME_SELECTIVE_INACTIVE_TASKS", ["VBAK"])
    assert put.last_request.json() == ["VBAK"]
    assert put.last_request.qs["requesttype"] == ["run_or_resume_selective_inactive_tasks"]


def test_change_request_put_is_not_retried_on_502(api: Any) -> None:
    put = api.put(FLOW, status_code=502, text="bad gateway")
    with pytest.raises(Exception, match="502"):
        SapDataIntelligenceHook().request_change("RF_SALES", "SUSPEND_ALL_ACTIVE_TASKS")
    assert put.call_count == 1


# -- timestamps and metrics ----------------------------------------------------------------------


def test_timestamps_all_forms_become_aware_utc() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_timestamp("2024-03-01T10:15:22.1234567", berlin) == datetime(
        2024, 3, 1, 9, 15, 22, 123456, tzinfo=timezone.utc
    )
    assert parse_timestamp("2021-11-24T07:53:07.7084525Z", berlin) == datetime(
        2021, 11, 24, 7, 53, 7, 708452, tzinfo=timezone.utc
    )
    assert parse_timestamp("2024-07-01T12:00:00+02:00") == datetime(2024, 7, 1, 10, tzinfo=timezone.utc)
    assert parse_timestamp(0) is None and parse_timestamp("") is None and parse_timestamp(None) is None
    assert parse_timestamp(1700000000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert parse_timestamp("not a time") is None


def test_task_summary_sparse_metrics_are_zero() -> None:
    summary = task_summary({"name": "MARA", "status": "created"})
    assert summary["records_transferred"] == 0 and summary["partitions"] == 0
    assert summary["status"] == "CREATED" and summary["initial_load_end_time"] is None


def test_graph_summary_epoch_zero_is_unset() -> None:
    summary = graph_summary({"handle": "h", "status": "running", "started": 1700000000, "stopped": 0})
    assert summary["started"] == "2023-11-14T22:13:20+00:00" and summary["stopped"] is None


# -- change requests -----------------------------------------------------------------------------

REF = {
    "flow": "RF_SALES",
    "request_type": "RUN_OR_RESUME_ALL_INACTIVE_TASKS",
    "requested_at": 1000.0,
    "acknowledged_at": 1001.0,
    "clock_skew": 30.0,
}


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("PENDING", "running"), ("VALIDATING", "running"), ("PROCESSING", "running"), ("COMPLETED", "succeeded")],
)
def test_change_request_states(status: str, outcome: str) -> None:
    result = evaluate_change_request({"status": status, "requestedAt": zulu(1000.5)}, REF)
    assert result["outcome"] == outcome and result["state"] == status


def test_change_request_error_lists_every_object_in_error() -> None:
    cr = {
        "status": "ERROR",
        "requestedAt": zulu(1000.4),
        "newObjects": [
            {"name": "RF", "type": "CONSTELLATION", "status": "VALIDATED"},
            {
                "name": "MARA",
                "type": "SOURCE_DATASET",
                "status": "ERROR",
                "error": "table already in use by replication flow X",
            },
            {"name": "MARC", "type": "TASK", "status": "ERROR", "error": "no authorization"},
        ],
    }
    result = evaluate_change_request(cr, REF)
    assert result["outcome"] == "failed"
    assert "SOURCE_DATASET MARA: table already in use by replication flow X" in result["message"]
    assert "TASK MARC: no authorization" in result["message"]


def test_older_status_is_not_ours_yet_and_skew_is_tolerated() -> None:
    assert evaluate_change_request({"status": "COMPLETED", "requestedAt": zulu(900)}, REF)["state"] == "NOT_YET_VISIBLE"
    # 20s behind our clock is within the 30s skew: ours.
    assert evaluate_change_request({"status": "COMPLETED", "requestedAt": zulu(980)}, REF)["outcome"] == "succeeded"


def test_newer_request_by_someone_else_is_reported() -> None:
    cr = {"requestType": "SUSPEND_ALL_ACTIVE_TASKS", "status": "PENDING", "requestedAt": zulu(1200)}
    result = evaluate_change_request(cr, REF)
    assert result["outcome"] == "failed" and result["state"] == "REPLACED"
    assert "someone else" in result["message"] and "SUSPEND_ALL_ACTIVE_TASKS" in result["message"]


# -- task states ---------------------------------------------------------------------------------

TREF = {"flow": "RF_SALES", "tasks": None, "target_state": "initial_load_complete", "max_retrying": None}


def test_task_in_error_fails_even_if_flow_is_running() -> None:
    tasks = [
        task("VBAK", "DELTA_RUNNING", initialLoadEndTime="2024-03-01T09:40:00.0000000"),
        task("VBAP", "ERROR", statusInfo="Source object /CDS/X does not exist"),
    ]
    result = evaluate_tasks(tasks, TREF)
    assert result["outcome"] == "failed" and "VBAP: Source object /CDS/X does not exist" in result["message"]


def test_initial_load_complete_rules() -> None:
    done = [
        task("VBAK", "DELTA_RUNNING", initialLoadEndTime="2024-03-01T09:40:00.0000000"),
        task("KNA1", "COMPLETED", loadType="INITIAL"),
    ]
    assert evaluate_tasks(done, TREF)["outcome"] == "succeeded"
    not_yet = [task("VBAK", "DELTA_RUNNING"), task("KNA1", "COMPLETED")]
    assert evaluate_tasks(not_yet, TREF)["outcome"] == "running"
    assert evaluate_tasks([], TREF)["outcome"] == "running"


def test_selected_tasks_only_and_delta_running() -> None:
    tasks = [task("VBAK", "DELTA_RUNNING"), task("VBAP", "INITIAL_RUNNING")]
    ref = {**TREF, "tasks": ["VBAK"], "target_state": "delta_running"}
    result = evaluate_tasks(tasks, ref)
    assert result["outcome"] == "succeeded" and [t["name"] for t in result["tasks"]] == ["VBAK"]
    assert evaluate_tasks(tasks, {**ref, "tasks": None})["outcome"] == "running"


def test_suspended_target() -> None:
    ref = {**TREF, "target_state": "suspended"}
    assert evaluate_tasks([task("VBAK", "SUSPENDING")], ref)["outcome"] == "running"
    assert evaluate_tasks([task("VBAK", "SUSPENDED", active=False)], ref)["outcome"] == "succeeded"


def test_retrying_waits_logs_and_max_retrying_fails(caplog: pytest.LogCaptureFixture) -> None:
    retrying = task(
        "VBAK",
        "RETRYING",
        partitions={
            "P1": {
                "retrying": True,
                "retryInfo": {"retryReason": "DATA_NOT_READY"},
                "partitionMetrics": {"retryCount": 17},
            }
        },
    )
    watch = RetryWatch()
    ref = {**TREF, "max_retrying": 600.0}
    with caplog.at_level(logging.WARNING):
        first = evaluate_tasks([retrying], ref, watch=watch, now=1000.0)
    assert first["outcome"] == "running"
    assert "DATA_NOT_READY" in caplog.text and "retry count 17" in caplog.text
    assert evaluate_tasks([retrying], ref, watch=watch, now=1500.0)["outcome"] == "running"
    late = evaluate_tasks([retrying], ref, watch=watch, now=1601.0)
    assert late["outcome"] == "failed" and "max_retrying" in late["message"] and "DATA_NOT_READY" in late["message"]
    # Recovering resets the clock.
    evaluate_tasks([task("VBAK", "INITIAL_RUNNING")], ref, watch=watch, now=1700.0)
    assert evaluate_tasks([retrying], ref, watch=watch, now=1800.0)["outcome"] == "running"


# -- graphs --------------------------------------------------------------------------------------


def test_graph_outcomes(caplog: pytest.LogCaptureFixture) -> None:
    assert graph_outcome({"status": "completed"}) is Outcome.SUCCEEDED
    assert graph_outcome({"status": "dead"}) is Outcome.FAILED
    for status in ("pending", "running", "paused", "stopping"):
        assert graph_outcome({"status": status}) is Outcome.RUNNING
    with caplog.at_level(logging.WARNING):
        assert graph_outcome({"status": "unknown", "handle": "h1"}) is Outcome.RUNNING
    assert "unknown" in caplog.text and "h1" in caplog.text


def test_run_graph_completes(api: Any, context: dict[str, Any]) -> None:
    start = api.post(GRAPHS, json={"handle": "h1", "status": "pending"})
    api.get(
        f"{GRAPHS}/h1",
        [
            {"json": {"handle": "h1", "status": "running"}},
            {"json": {"handle": "h1", "status": "completed", "started": 1700000000, "stopped": 0}},
        ],
    )
    op = SapDataIntelligenceRunGraphOperator(
        task_id="g",
        graph="com.example.load",
        configuration_substitutions={"DATE": 20240101},
        name="run-1",
        deferrable=False,
    )
    result = op.execute(context)
    assert start.call_count == 1
    assert start.last_request.json() == {
        "src": "com.example.load",
        "configurationSubstitutions": {"DATE": "20240101"},
        "name": "run-1",
    }
    assert result["status"] == "completed" and result["started"] == "2023-11-14T22:13:20+00:00"
    context["ti"].xcom_push.assert_any_call(
        key="sap_data_intelligence_graph", value={"handle": "h1", "graph": "com.example.load"}
    )


def test_run_graph_dead_fails_with_message(api: Any, context: dict[str, Any]) -> None:
    api.post(GRAPHS, json={"handle": "h1", "status": "pending"})
    api.get(f"{GRAPHS}/h1", json={"handle": "h1", "status": "dead", "message": "Error in operator python3: boom"})
    with pytest.raises(RemoteJobFailedError, match="dead: Error in operator python3: boom"):
        SapDataIntelligenceRunGraphOperator(task_id="g", graph="com.example.load", deferrable=False).execute(context)


def test_run_graph_on_kill_stops_it(api: Any, context: dict[str, Any]) -> None:
    api.post(GRAPHS, json={"handle": "h1", "status": "pending"})
    api.get(f"{GRAPHS}/h1", json={"handle": "h1", "status": "running"})
    stop = api.delete(f"{GRAPHS}/h1", status_code=200, text="")
    op = SapDataIntelligenceRunGraphOperator(task_id="g", graph="com.example.load", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert isinstance(deferred.value.trigger, SapDataIntelligenceGraphTrigger)
    op.on_kill()
    assert stop.call_count == 1


def test_graph_sensor(api: Any) -> None:
    api.get(f"{GRAPHS}/h9", json={"handle": "h9", "status": "dead", "message": "oops"})
    with pytest.raises(RemoteJobFailedError, match="oops"):
        SapDataIntelligenceGraphSensor(task_id="s", handle="h9", deferrable=False, poke_interval=5).poke({})


async def test_graph_trigger_on_kill_stops_graph() -> None:
    trigger = SapDataIntelligenceGraphTrigger(conn_id="c", ref={"handle": "h1"})
    with mock.patch.object(SapDataIntelligenceHook, "astop_graph", mock.AsyncMock()) as stop:
        await trigger.on_kill()
    stop.assert_awaited_once_with("h1")


# -- flow operators ------------------------------------------------------------------------------


def test_start_flow_waits_for_change_request_then_tasks(api: Any, context: dict[str, Any]) -> None:
    put = api.put(FLOW, status_code=202, json={"url": "/api/dt/v1/replicationflows/RF_SALES/changerequeststatus"})
    cr = api.get(f"{FLOW}/changerequeststatus", json=cr_callback("PENDING", "PROCESSING", "COMPLETED"))
    monitors = api.get(
        f"{FLOW}/taskMonitors",
        [
            {"json": [task("VBAK", "INITIAL_RUNNING"), task("VBAP", "INITIAL_RUNNING")]},
            {
                "json": [
                    task(
                        "VBAK",
                        "DELTA_RUNNING",
                        initialLoadEndTime="2024-03-01T09:40:00.0000000",
                        numberOfRecordsTransferred=10,
                        numberOfPartitions=4,
                    ),
                    task("VBAP", "DELTA_RUNNING", initialLoadEndTime="2024-03-01T09:41:00.0000000"),
                ]
            },
        ],
    )
    op = SapDataIntelligenceStartFlowOperator(
        task_id="start", flow_name="RF_SALES", target_state="initial_load_complete", deferrable=False
    )
    result = op.execute(context)
    assert put.call_count == 1 and put.last_request.qs["requesttype"] == ["run_or_resume_all_inactive_tasks"]
    assert put.last_request.body is None
    assert cr.call_count == 3 and monitors.call_count == 2
    assert result["phase"] == "tasks" and result["records_transferred"] == 10
    vbak = result["tasks"][0]
    assert vbak["initial_load_end_time"] == "2024-03-01T08:40:00+00:00" and vbak["partitions"] == 4
    assert result["tasks"][1]["records_transferred"] == 0
    assert result["task_metrics"] == {
        "created": 0,
        "initialRunning": 0,
        "deltaRunning": 2,
        "suspended": 0,
        "error": 0,
        "completed": 0,
        "initialCompleted": 0,
        "total": 2,
    }
    # Airflow 3.3 asks for the result again after polling: no extra requests.
    pushed = {c.kwargs["key"]: c.kwargs["value"] for c in context["ti"].xcom_push.call_args_list}
    assert pushed["sap_data_intelligence_flow_url"].endswith("/replicationflows/RF_SALES")
    assert op.get_job_result(pushed["sap_data_intelligence_flow"], context) == result
    assert cr.call_count == 3 and monitors.call_count == 2


def test_start_flow_change_request_error(api: Any, context: dict[str, Any]) -> None:
    api.put(FLOW, status_code=202, json={"url": "x"})

    def respond(request: Any, ctx: Any) -> dict[str, Any]:
        return {
            "status": "ERROR",
            "requestedAt": zulu(time.time()),
            "newObjects": [
                {
                    "name": "VBAK",
                    "type": "SOURCE_DATASET",
                    "status": "ERROR",
                    "error": "table already in use by replication flow X",
                }
            ],
        }

    api.get(f"{FLOW}/changerequeststatus", json=respond)
    op = SapDataIntelligenceStartFlowOperator(task_id="start", flow_name="RF_SALES", deferrable=False)
    with pytest.raises(RemoteJobFailedError, match="table already in use by replication flow X"):
        op.execute(context)


def test_start_flow_someone_elses_newer_request(api: Any, context: dict[str, Any]) -> None:
    api.put(FLOW, status_code=202, json={"url": "x"})
    api.get(
        f"{FLOW}/changerequeststatus",
        json=lambda r, c: {
            "requestType": "SUSPEND_ALL_ACTIVE_TASKS",
            "status": "PENDING",
            "requestedAt": zulu(time.time() + 3600),
        },
    )
    op = SapDataIntelligenceStartFlowOperator(task_id="start", flow_name="RF_SALES", deferrable=False)
    with pytest.raises(RemoteJobFailedError, match="someone else"):
        op.execute(context)


def test_start_selected_tasks_unknown_name_fails_before_any_write(api: Any, context: dict[str, Any]) -> None:
    put = api.put(FLOW, status_code=202, json={})
    op = SapDataIntelligenceStartFlowOperator(task_id="s", flow_name="RF_SALES", tasks=["VBAK", "NOPE"])
    with pytest.raises(InvalidRequestError, match="'VBAK', 'VBAP'"):
        op.execute(context)
    assert not put.called


def test_start_flow_deferrable_chains_triggers(api: Any, context: dict[str, Any]) -> None:
    api.put(FLOW, status_code=202, json={"url": "x"})
    api.get(f"{FLOW}/changerequeststatus", json=cr_callback("PENDING"))
    op = SapDataIntelligenceStartFlowOperator(
        task_id="start",
        flow_name="RF_SALES",
        tasks=["VBAK"],
        target_state="delta_running",
        deferrable=True,
        timeout=600,
        max_retrying=timedelta(minutes=30),
    )
    with pytest.raises(TaskDeferred) as first:
        op.execute(context)
    trigger = first.value.trigger
    assert isinstance(trigger, SapDataIntelligenceChangeRequestTrigger)
    assert trigger.ref["request_type"] == "RUN_OR_RESUME_SELECTIVE_INACTIVE_TASKS" and trigger.ref["tasks"] == ["VBAK"]
    deadline = trigger.deadline
    assert deadline is not None and "password" not in str(trigger.serialize())

    api.get(f"{FLOW}/taskMonitors", json=[task("VBAK", "INITIAL_RUNNING")])
    resumed = SapDataIntelligenceStartFlowOperator(
        task_id="start",
        flow_name="RF_SALES",
        tasks=["VBAK"],
        target_state="delta_running",
        deferrable=True,
        timeout=600,
        max_retrying=1800,
    )
    event = {
        "status": "success",
        "ref": trigger.ref,
        **trigger.ref,
        "raw_state": "change_request:COMPLETED",
        "result": {"outcome": "succeeded", "phase": "change_request"},
    }
    with pytest.raises(TaskDeferred) as second:
        resumed.execute_complete(context, event)
    flow_trigger = second.value.trigger
    assert isinstance(flow_trigger, SapDataIntelligenceFlowTrigger)
    assert flow_trigger.ref["target_state"] == "delta_running" and flow_trigger.ref["max_retrying"] == 1800
    assert flow_trigger.deadline == deadline

    done = {
        "status": "success",
        "ref": flow_trigger.ref,
        **flow_trigger.ref,
        "raw_state": "tasks:DELTA_RUNNING:1",
        "result": {
            "outcome": "succeeded",
            "phase": "tasks",
            "state": "DELTA_RUNNING:1",
            "tasks": [{"name": "VBAK", "records_transferred": 5}],
        },
    }
    result = resumed.execute_complete(context, done)
    assert result["tasks"] == [{"name": "VBAK", "records_transferred": 5}] and result["records_transferred"] == 5


def test_stop_flow_waits_until_suspended(api: Any, context: dict[str, Any]) -> None:
    put = api.put(FLOW, status_code=202, json={"url": "x"})
    api.get(f"{FLOW}/changerequeststatus", json=cr_callback("COMPLETED"))
    api.get(
        f"{FLOW}/taskMonitors",
        [{"json": [task("VBAK", "SUSPENDING")]}, {"json": [task("VBAK", "SUSPENDED", active=False)]}],
    )
    result = SapDataIntelligenceStopFlowOperator(task_id="stop", flow_name="RF_SALES", deferrable=False).execute(
        context
    )
    assert put.last_request.qs["requesttype"] == ["suspend_all_active_tasks"]
    assert result["target_state"] == "suspended" and result["tasks"][0]["status"] == "SUSPENDED"


def test_restart_suspends_then_resumes(api: Any, context: dict[str, Any]) -> None:
    put = api.put(FLOW, status_code=202, json={"url": "x"})
    api.get(f"{FLOW}/changerequeststatus", json=cr_callback("COMPLETED"))
    api.get(
        f"{FLOW}/taskMonitors",
        [{"json": [task("VBAK", "SUSPENDED", active=False)]}, {"json": [task("VBAK", "DELTA_RUNNING")]}],
    )
    op = SapDataIntelligenceRestartFlowOperator(
        task_id="r", flow_name="RF_SALES", tasks=["VBAK"], target_state="delta_running", deferrable=False
    )
    result = op.execute(context)
    kinds = [r.qs["requesttype"][0] for r in api.request_history if r.method == "PUT"]
    assert kinds == ["suspend_selective_active_tasks", "run_or_resume_selective_inactive_tasks"]
    assert put.call_count == 2 and result["target_state"] == "delta_running"


def test_restart_only_failed(api: Any, context: dict[str, Any]) -> None:
    put = api.put(FLOW, status_code=202, json={"url": "x"})
    api.get(f"{FLOW}/changerequeststatus", json=cr_callback("COMPLETED"))
    api.get(
        f"{FLOW}/taskMonitors",
        json=[task("VBAK", "ERROR", active=False), task("VBAP", "ERROR", active=True), task("KNA1", "DELTA_RUNNING")],
    )
    SapDataIntelligenceRestartFlowOperator(
        task_id="r", flow_name="RF_SALES", only_failed=True, deferrable=False
    ).execute(context)
    assert put.call_count == 1 and put.last_request.json() == ["VBAK"]


def test_restart_only_failed_with_nothing_failed_sends_nothing(api: Any, context: dict[str, Any]) -> None:
    put = api.put(FLOW, status_code=202, json={"url": "x"})
    api.get(f"{FLOW}/taskMonitors", json=[task("VBAK", "DELTA_RUNNING")])
    result = SapDataIntelligenceRestartFlowOperator(task_id="r", flow_name="RF_SALES", only_failed=True).execute(
        context
    )
    assert result["restarted"] == [] and not put.called


def test_flow_sensor_validates_and_fails_on_error(api: Any) -> None:
    api.get(f"{FLOW}/taskMonitors", json=[task("VBAK", "ERROR", statusInfo="boom")])
    sensor = SapDataIntelligenceFlowSensor(
        task_id="s",
        flow_name="RF_SALES",
        target_state="delta_running",
        tasks=["NOPE"],
        deferrable=False,
        poke_interval=5,
    )
    with pytest.raises(InvalidRequestError, match="'VBAK', 'VBAP'"):
        sensor.execute({})
    sensor = SapDataIntelligenceFlowSensor(
        task_id="s", flow_name="RF_SALES", target_state="delta_running", deferrable=False, poke_interval=5
    )
    with pytest.raises(RemoteJobFailedError, match="VBAK: boom"):
        sensor.poke({})


def test_flow_sensor_defers_with_flow_trigger(api: Any) -> None:
    api.get(f"{FLOW}/taskMonitors", json=[task("VBAK", "INITIAL_RUNNING")])
    sensor = SapDataIntelligenceFlowSensor(
        task_id="s", flow_name="RF_SALES", target_state="initial_load_complete", deferrable=True, poke_interval=5
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert isinstance(deferred.value.trigger, SapDataIntelligenceFlowTrigger)
    assert deferred.value.trigger.cancel_on_kill is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flow_name": ""}, "flow_name"),
        ({"flow_name": "RF", "target_state": "suspended"}, "target_state"),
        ({"flow_name": "RF", "tasks": []}, "tasks is empty"),
        ({"flow_name": "RF", "tasks": "VBAK"}, "list of task names"),
        ({"flow_name": "RF", "max_retrying": -5}, "max_retrying"),
    ],
)
def test_start_flow_arguments_checked_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SapDataIntelligenceStartFlowOperator(task_id="s", **kwargs)


def test_sensor_and_graph_arguments_checked() -> None:
    with pytest.raises(ValueError, match="target_state"):
        SapDataIntelligenceFlowSensor(task_id="s", flow_name="RF", target_state="done")
    with pytest.raises(ValueError, match="graph"):
        SapDataIntelligenceRunGraphOperator(task_id="g", graph="")
    with pytest.raises(ValueError, match="configuration_substitutions"):
        SapDataIntelligenceRunGraphOperator(task_id="g", graph="x", configuration_substitutions=["a"])  # type: ignore[arg-type]


# -- triggers ------------------------------------------------------------------------------------


async def test_flow_trigger_fires_failed_on_task_error() -> None:
    trigger = SapDataIntelligenceFlowTrigger(
        conn_id="c",
        ref={
            "flow": "RF_SALES",
            "phase": "tasks",
            "tasks": None,
            "target_state": "delta_running",
            "max_retrying": None,
        },
    )
    hook_tasks = mock.AsyncMock(return_value=[task("VBAK", "ERROR", statusInfo="broken")])
    with mock.patch.object(SapDataIntelligenceHook, "atask_monitors", hook_tasks):
        events = [event async for event in trigger.run()]
    assert len(events) == 1 and events[0].payload["status"] == "failed"
    assert "VBAK: broken" in events[0].payload["result"]["message"]


async def test_change_request_trigger_succeeds_on_our_completed_request() -> None:
    now = time.time()
    ref = {
        "flow": "RF_SALES",
        "phase": "change_request",
        "request_type": "SUSPEND_ALL_ACTIVE_TASKS",
        "requested_at": now,
        "acknowledged_at": now,
        "clock_skew": 60,
    }
    trigger = SapDataIntelligenceChangeRequestTrigger(conn_id="c", ref=ref)
    status = mock.AsyncMock(return_value={"status": "COMPLETED", "requestedAt": zulu(now)})
    with mock.patch.object(SapDataIntelligenceHook, "achange_request_status", status):
        events = [event async for event in trigger.run()]
    assert events[0].payload["status"] == "success"
    assert events[0].payload["raw_state"] == "change_request:COMPLETED"


def test_change_request_404_means_not_visible_yet(api: Any) -> None:
    api.get(f"{FLOW}/changerequeststatus", status_code=404, json={"message": "none"})
    status = SapDataIntelligenceHook().change_request_status("RF_SALES")
    assert evaluate_change_request(status, REF)["state"] == "NOT_YET_VISIBLE"


def test_non_json_body_is_a_clear_error(api: Any) -> None:
    api.get(f"{RMS}/replicationflows", text="plain text", headers={"Content-Type": "text/plain"})
    with pytest.raises(Exception, match="not JSON"):
        SapDataIntelligenceHook().list_flows()


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="durable execution needs Airflow 3.3+")
def test_durable_retry_reconnects_to_the_tasks_phase_without_a_new_request(api: Any) -> None:
    put = api.put(FLOW, status_code=202, json={"url": "x"})
    api.get(
        f"{FLOW}/taskMonitors", [{"json": [task("VBAK", "INITIAL_RUNNING")]}, {"json": [task("VBAK", "DELTA_RUNNING")]}]
    )
    store = mock.MagicMock(spec_set=["get", "set"])
    store.get.return_value = {
        "flow": "RF_SALES",
        "phase": "tasks",
        "tasks": None,
        "target_state": "delta_running",
        "max_retrying": None,
    }
    op = SapDataIntelligenceStartFlowOperator(
        task_id="s", flow_name="RF_SALES", target_state="delta_running", deferrable=False
    )
    result = op.execute({"ti": mock.MagicMock(stats_tags={}), "task_state_store": store})
    assert result["tasks"][0]["status"] == "DELTA_RUNNING" and not put.called


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="durable execution needs Airflow 3.3+")
def test_durable_store_follows_the_phase(api: Any) -> None:
    api.put(FLOW, status_code=202, json={"url": "x"})
    api.get(f"{FLOW}/changerequeststatus", json=cr_callback("COMPLETED"))
    api.get(f"{FLOW}/taskMonitors", json=[task("VBAK", "DELTA_RUNNING")])
    store = mock.MagicMock(spec_set=["get", "set"])
    store.get.return_value = None
    SapDataIntelligenceStartFlowOperator(
        task_id="s", flow_name="RF_SALES", target_state="delta_running", deferrable=False
    ).execute({"ti": mock.MagicMock(stats_tags={}), "task_state_store": store})
    phases = [c.args[1]["phase"] for c in store.set.call_args_list]
    assert phases == ["change_request", "tasks"]


def test_change_request_busy_409_is_sent_again(api: Any) -> None:
    put = api.put(
        FLOW,
        [{"status_code": 409, "json": {"message": "still processing"}}, {"status_code": 202, "json": {"url": "x"}}],
    )
    assert SapDataIntelligenceHook().request_change("RF_SALES", "SUSPEND_ALL_ACTIVE_TASKS") == {"url": "x"}
    assert put.call_count == 2
