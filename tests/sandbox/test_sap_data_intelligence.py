"""The SAP Data Intelligence emulator, and the DI hook/operators against it (real HTTP, no mocks)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from airflow_provider_sapplan.exceptions import AuthenticationError, InvalidRequestError, RemoteJobFailedError
from airflow_provider_sapplan.hooks.sap_data_intelligence import SapDataIntelligenceHook
from airflow_provider_sapplan.operators.sap_data_intelligence import (
    SapDataIntelligenceRestartFlowOperator,
    SapDataIntelligenceRunGraphOperator,
    SapDataIntelligenceStartFlowOperator,
    SapDataIntelligenceStopFlowOperator,
)
from airflow_provider_sapplan.sandbox import SandboxServer
from tests.conftest import set_connection

AUTH = ("default\\etl_user", "di-secret")
HEADERS = {"X-Requested-With": "Fetch"}
RMS = "/sap-data-intelligence/app/rms/api/dt/v1"


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep = time.sleep
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda seconds: real_sleep(0.02))


@pytest.fixture
def conn(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> str:
    set_connection(
        monkeypatch,
        "sap_data_intelligence_default",
        conn_type="sap_data_intelligence",
        host=f"{sandbox.url}/sap-data-intelligence",
        login="default\\etl_user",
        password="di-secret",
        extra={"timezone": "Europe/Berlin"},
    )
    return "sap_data_intelligence_default"


def get(sandbox: SandboxServer, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("auth", AUTH)
    kwargs.setdefault("headers", HEADERS)
    return requests.get(f"{sandbox.url}{path}", timeout=5, **kwargs)


def until(check: Any, timeout: float = 5.0) -> Any:
    end = time.time() + timeout
    while time.time() < end:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not reached")


def test_bad_credentials_get_html_logon_page_on_200(sandbox: SandboxServer) -> None:
    response = get(sandbox, f"{RMS}/replicationflows", auth=("etl_user", "di-secret"))
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")


def test_missing_requested_with_is_403(sandbox: SandboxServer) -> None:
    response = get(sandbox, f"{RMS}/replicationflows", headers={})
    assert response.status_code == 403 and "X-Requested-With" in response.text


def test_monitor_is_an_array_with_sparse_metrics_and_no_status_before_first_run(sandbox: SandboxServer) -> None:
    rows = get(sandbox, f"{RMS}/replicationflowMonitors", params={"name": "RF_MARA"}).json()
    assert isinstance(rows, list) and len(rows) == 1
    assert rows[0]["taskMetrics"] == {"created": 1, "total": 1} and "status" not in rows[0]
    task = get(sandbox, f"{RMS}/replicationflows/RF_MARA/taskMonitors").json()[0]
    assert "numberOfRecordsTransferred" not in task and "initialLoadEndTime" not in task


def test_change_request_state_machine_and_task_states(sandbox: SandboxServer) -> None:
    sandbox.sap_data_intelligence.configure(change_request_step=15)  # 0.3 s per stage: observable under load
    put = requests.put(
        f"{sandbox.url}{RMS}/replicationflows/RF_SALES",
        params={"requestType": "RUN_OR_RESUME_ALL_INACTIVE_TASKS"},
        auth=AUTH,
        headers=HEADERS,
        timeout=5,
    )
    assert put.status_code == 202 and put.json() == {"url": "/api/dt/v1/replicationflows/RF_SALES/changerequeststatus"}
    first = get(sandbox, f"{RMS}/replicationflows/RF_SALES/changerequeststatus").json()
    assert first["status"] in ("PENDING", "VALIDATING") and first["requestedAt"].endswith("Z")
    assert len(first["requestedAt"].split(".")[1]) == 8  # 7 digits + Z
    until(lambda: get(sandbox, f"{RMS}/replicationflows/RF_SALES/changerequeststatus").json()["status"] == "COMPLETED")
    tasks = until(
        lambda: (
            [
                t
                for t in get(sandbox, f"{RMS}/replicationflows/RF_SALES/taskMonitors").json()
                if t["status"] in ("DELTA_RUNNING", "COMPLETED")
            ]
            and get(sandbox, f"{RMS}/replicationflows/RF_SALES/taskMonitors").json()
        )
    )
    until(
        lambda: (
            {t["status"] for t in get(sandbox, f"{RMS}/replicationflows/RF_SALES/taskMonitors").json()}
            == {"DELTA_RUNNING", "COMPLETED"}
        )
    )
    tasks = {t["name"]: t for t in get(sandbox, f"{RMS}/replicationflows/RF_SALES/taskMonitors").json()}
    assert tasks["KNA1"]["status"] == "COMPLETED" and tasks["VBAK"]["status"] == "DELTA_RUNNING"
    assert (
        "Z" not in tasks["VBAK"]["initialLoadEndTime"] and len(tasks["VBAK"]["initialLoadEndTime"].split(".")[1]) == 7
    )
    assert sandbox.stats.tasks_started["sap_data_intelligence:change_request:RF_SALES"] == 1


def test_selective_request_rejects_unknown_task(sandbox: SandboxServer) -> None:
    response = requests.put(
        f"{sandbox.url}{RMS}/replicationflows/RF_SALES",
        params={"requestType": "RUN_OR_RESUME_SELECTIVE_INACTIVE_TASKS"},
        json=["NOPE"],
        auth=AUTH,
        headers=HEADERS,
        timeout=5,
    )
    assert response.status_code == 400 and "NOPE" in response.text


def test_start_and_stop_flow_operators_end_to_end(sandbox: SandboxServer, conn: str) -> None:
    result = SapDataIntelligenceStartFlowOperator(
        task_id="start", flow_name="RF_SALES", target_state="initial_load_complete", deferrable=False, timeout=30
    ).execute({})
    assert {t["name"]: t["status"] for t in result["tasks"]} == {
        "VBAK": "DELTA_RUNNING",
        "VBAP": "DELTA_RUNNING",
        "KNA1": "COMPLETED",
    }
    assert all(t["initial_load_end_time"].endswith("+00:00") for t in result["tasks"])
    stopped = SapDataIntelligenceStopFlowOperator(
        task_id="stop", flow_name="RF_SALES", deferrable=False, timeout=30
    ).execute({})
    assert {t["status"] for t in stopped["tasks"]} == {"SUSPENDED", "COMPLETED"}
    assert sandbox.sap_data_intelligence.change_requests == 2


def test_change_request_error_objects(sandbox: SandboxServer, conn: str) -> None:
    sandbox.sap_data_intelligence.fail_next_request("RF_MARA")
    with pytest.raises(RemoteJobFailedError, match="table already in use by replication flow RF_OTHER"):
        SapDataIntelligenceStartFlowOperator(task_id="s", flow_name="RF_MARA", deferrable=False, timeout=30).execute({})


def test_retrying_then_error_fails_with_status_info(sandbox: SandboxServer, conn: str) -> None:
    sandbox.sap_data_intelligence.inject_task_error("RF_MARA", "MARA", retries=3, message="Source table locked")
    with pytest.raises(RemoteJobFailedError, match="MARA: Source table locked"):
        SapDataIntelligenceStartFlowOperator(
            task_id="s", flow_name="RF_MARA", target_state="delta_running", deferrable=False, timeout=30
        ).execute({})
    # The failed task can be restarted alone.
    result = SapDataIntelligenceRestartFlowOperator(
        task_id="r", flow_name="RF_MARA", only_failed=True, target_state="delta_running", deferrable=False, timeout=30
    ).execute({})
    assert result["tasks"][0]["status"] == "DELTA_RUNNING"


def test_endless_retrying_hits_max_retrying(sandbox: SandboxServer, conn: str) -> None:
    sandbox.sap_data_intelligence.inject_task_error("RF_MARA", "MARA", retries=None)
    with pytest.raises(RemoteJobFailedError, match="max_retrying"):
        SapDataIntelligenceStartFlowOperator(
            task_id="s",
            flow_name="RF_MARA",
            target_state="delta_running",
            max_retrying=0.2,
            deferrable=False,
            timeout=30,
        ).execute({})


def test_hook_against_sandbox_auth_and_validation(
    sandbox: SandboxServer, conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = SapDataIntelligenceHook()
    assert "2 replication flow" in hook.check_connection()
    with pytest.raises(InvalidRequestError, match="'VBAK', 'VBAP', 'KNA1'"):
        hook.validate_task_names("RF_SALES", ["NOPE"])
    set_connection(
        monkeypatch,
        "bad",
        conn_type="sap_data_intelligence",
        host=f"{sandbox.url}/sap-data-intelligence",
        login="default\\etl_user",
        password="wrong",
    )
    with pytest.raises(AuthenticationError, match=r"tenant\\user"):
        SapDataIntelligenceHook("bad").list_flows()


@pytest.mark.parametrize(("outcome", "error"), [("completed", None), ("dead", "disk full")])
def test_run_graph(sandbox: SandboxServer, conn: str, outcome: str, error: str | None) -> None:
    sandbox.sap_data_intelligence.configure_graph("com.example.g", outcome=outcome, message=error or "")
    op = SapDataIntelligenceRunGraphOperator(task_id="g", graph="com.example.g", deferrable=False, timeout=30)
    if error:
        with pytest.raises(RemoteJobFailedError, match=error):
            op.execute({})
    else:
        assert op.execute({})["status"] == "completed"
    assert sandbox.sap_data_intelligence.graph_starts == 1


def test_graph_stop(sandbox: SandboxServer, conn: str) -> None:
    sandbox.sap_data_intelligence.configure_graph("com.example.long", outcome="running")
    hook = SapDataIntelligenceHook()
    handle = hook.start_graph("com.example.long")["handle"]
    hook.stop_graph(handle)
    graph = until(lambda: (g := hook.get_graph(handle))["status"] == "dead" and g)
    assert graph["message"] == "Graph stopped by user" and graph["stopped"] > 0
    assert sandbox.sap_data_intelligence.graph_stops == 1


def test_429_and_503_on_demand_are_retried(sandbox: SandboxServer, conn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("airflow_provider_sapplan.core.http.time.sleep", lambda seconds: None)
    sandbox.faults.add(method="GET", path_regex="taskMonitors$", status=429, headers={"Retry-After": "0"}, times=1)
    sandbox.faults.add(method="PUT", path_regex="replicationflows/RF_MARA$", status=503, times=1)
    hook = SapDataIntelligenceHook()
    assert hook.task_monitors("RF_MARA")[0]["name"] == "MARA"
    assert hook.request_change("RF_MARA", "RUN_OR_RESUME_ALL_INACTIVE_TASKS")["url"].endswith("changerequeststatus")
    assert sandbox.stats.faults_applied == 2
    assert sandbox.sap_data_intelligence.change_requests == 1  # the 503 was not acted on; one request taken


def test_concurrent_change_request_is_409(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}{RMS}/replicationflows/RF_SALES"
    first = requests.put(url, params={"requestType": "SUSPEND_ALL_ACTIVE_TASKS"}, auth=AUTH, headers=HEADERS, timeout=5)
    second = requests.put(
        url, params={"requestType": "SUSPEND_ALL_ACTIVE_TASKS"}, auth=AUTH, headers=HEADERS, timeout=5
    )
    assert first.status_code == 202 and second.status_code == 409 and "still being processed" in second.text
