"""Anaplan operators with mocked HTTP: construction, deferral, every event shape, kill, durability."""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan._compat import AIRFLOW_V_3_3_PLUS, TaskDeferred
from airflow_provider_sapplan.exceptions import RemoteJobFailedError, RemoteJobTimeoutError, SapplanError
from airflow_provider_sapplan.operators.anaplan import (
    AnaplanRunExportOperator,
    AnaplanRunImportOperator,
    AnaplanRunProcessOperator,
    AnaplanUploadFileOperator,
    model_url,
)
from airflow_provider_sapplan.triggers.anaplan import AnaplanTaskTrigger
from tests.conftest import ANAPLAN_API, ANAPLAN_AUTH, MODEL, WORKSPACE
from tests.unit.test_anaplan_hook import token_body

MODEL_URL = f"{ANAPLAN_API}/workspaces/{WORKSPACE}/models/{MODEL}"
IMPORT_ID = "112000000001"
TASKS = f"{MODEL_URL}/imports/{IMPORT_ID}/tasks"
REF = {
    "workspace_id": WORKSPACE,
    "model_id": MODEL,
    "action_type": "imports",
    "action_id": IMPORT_ID,
    "task_id": "T1",
}
FAILED_TASK = {
    "taskId": "T1",
    "taskState": "COMPLETE",
    "result": {
        "successful": False,
        "failureDumpAvailable": True,
        "details": [{"type": "lineItemRowsProcessed", "values": ["successRowCount", "7", "failedCount", "3"]}],
    },
}


@pytest.fixture
def api(anaplan_conn: str, requests_mock: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr("airflow_provider_sapplan.core.http.time.sleep", lambda s: None)
    requests_mock.post(f"{ANAPLAN_AUTH}/token/authenticate", json=token_body())
    requests_mock.post(TASKS, json={"task": {"taskId": "T1", "taskState": "NOT_STARTED"}})
    return requests_mock


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": mock.MagicMock()}


def run_import(**kwargs: Any) -> AnaplanRunImportOperator:
    return AnaplanRunImportOperator(task_id="load", import_id=IMPORT_ID, **kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"import_id": "1", "import_name": "Load"}], ids=["neither", "both"])
def test_exactly_one_of_id_or_name(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly one of import_id or import_name"):
        AnaplanRunImportOperator(task_id="t", **kwargs)


def test_upload_operator_needs_file() -> None:
    with pytest.raises(ValueError, match="file_id or file_name"):
        AnaplanUploadFileOperator(task_id="t", source="/tmp/x")


def test_model_url_on_api_host() -> None:
    assert model_url("https://api.anaplan.com/2/0", "w", "M") == (
        "https://api.anaplan.com/anaplan/framework.jsp?selectedWorkspaceId=w&selectedModelId=M"
    )


def test_deferrable_pushes_ref_then_defers_without_framework_timeout(api: Any, context: dict) -> None:
    api.get(f"{TASKS}/T1", json={"task": {"taskId": "T1", "taskState": "IN_PROGRESS"}})
    op = run_import(deferrable=True, timeout=600, mapping_parameters={"Version": "Actual"})
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, AnaplanTaskTrigger)
    assert trigger.ref == REF and trigger.deadline is not None and trigger.cancel_on_kill
    assert deferred.value.timeout is None and deferred.value.method_name == "execute_complete"
    context["ti"].xcom_push.assert_any_call(key="anaplan_task", value=REF)
    body = next(r for r in api.request_history if r.method == "POST" and r.url == TASKS).json()
    assert body == {
        "localeName": "en_US",
        "mappingParameters": [{"entityType": "Version", "entityName": "Actual"}],
    }


def test_already_finished_task_is_not_deferred(api: Any, context: dict) -> None:
    api.get(
        f"{TASKS}/T1",
        json={"task": {"taskId": "T1", "taskState": "COMPLETE", "result": {"successful": True}}},
    )
    result = run_import(deferrable=True).execute(context)
    assert result["successful"] is True and result["task_id"] == "T1"


def test_name_is_resolved_before_running(api: Any, context: dict) -> None:
    api.get(f"{MODEL_URL}/imports", json={"imports": [{"id": IMPORT_ID, "name": "Load Actuals"}]})
    api.get(f"{TASKS}/T1", json={"task": {"taskId": "T1", "taskState": "IN_PROGRESS"}})
    op = AnaplanRunImportOperator(task_id="t", import_name="Load Actuals", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert deferred.value.trigger.ref["action_id"] == IMPORT_ID


def test_execute_complete_success(api: Any, context: dict) -> None:
    task = {"taskId": "T1", "taskState": "COMPLETE", "result": {"successful": True, "details": []}}
    result = run_import().execute_complete(context, {"status": "success", "ref": REF, "result": task})
    assert result["task_state"] == "COMPLETE" and result["action_id"] == IMPORT_ID


def test_execute_complete_failure_reads_dump(api: Any, context: dict, caplog: Any, capsys: Any) -> None:
    dump = f"{TASKS}/T1/dump"
    api.get(f"{dump}/chunks", json={"chunks": [{"id": "0"}]})
    api.get(
        f"{dump}/chunks/0",
        content=b'"_Status_","Region"\n"E","#INVALID"\n',
        headers={"Content-Type": "text/csv"},
    )
    with pytest.raises(RemoteJobFailedError, match="3 row\\(s\\) failed") as info:
        run_import().execute_complete(context, {"status": "failed", "ref": REF, "result": FAILED_TASK})
    assert "task T1" in str(info.value) and "dump" in str(info.value)
    assert "#INVALID" in caplog.text + capsys.readouterr().out  # Airflow 3 logs through structlog


def test_failure_keeps_whole_dump_when_asked(api: Any, context: dict, tmp_path: Any) -> None:
    dump = f"{TASKS}/T1/dump"
    api.get(f"{dump}/chunks", json={"chunks": [{"id": "0"}]})
    api.get(f"{dump}/chunks/0", content=b"h\nr\n", headers={"Content-Type": "text/csv"})
    with pytest.raises(RemoteJobFailedError):
        run_import(dump_destination=str(tmp_path)).execute_complete(
            context, {"status": "failed", "ref": REF, "result": FAILED_TASK}
        )
    assert (tmp_path / f"{IMPORT_ID}_T1_dump.csv").read_bytes() == b"h\nr\n"


def test_failure_with_replaced_dump_still_reports(api: Any, context: dict) -> None:
    api.get(f"{TASKS}/T1/dump/chunks", status_code=404)
    with pytest.raises(RemoteJobFailedError, match="3 row"):
        run_import().execute_complete(context, {"status": "failed", "ref": REF, "result": FAILED_TASK})


def test_process_failure_names_failed_steps(api: Any, context: dict) -> None:
    ref = {**REF, "action_type": "processes", "action_id": "118000000001"}
    base = f"{MODEL_URL}/processes/118000000001/tasks/T1/dumps/{IMPORT_ID}"
    api.get(f"{base}/chunks", json={"chunks": [{"id": "0"}]})
    api.get(f"{base}/chunks/0", content=b"h\nbad\n", headers={"Content-Type": "text/csv"})
    task = {
        "taskState": "COMPLETE",
        "result": {
            "successful": False,
            "nestedResults": [
                {"objectId": IMPORT_ID, "successful": False, "failureDumpAvailable": True},
                {"objectId": "116000000001", "successful": True},
            ],
        },
    }
    op = AnaplanRunProcessOperator(task_id="p", process_id="118000000001")
    with pytest.raises(RemoteJobFailedError, match=f"failed step\\(s\\): {IMPORT_ID}"):
        op.execute_complete(context, {"status": "failed", "ref": ref, "result": task})
    assert any(r.url == f"{base}/chunks/0" for r in api.request_history)


def test_execute_complete_cancelled(api: Any, context: dict) -> None:
    task = {"taskId": "T1", "taskState": "CANCELLED", "result": {"successful": False}}
    with pytest.raises(RemoteJobFailedError, match="ended CANCELLED"):
        run_import().execute_complete(context, {"status": "failed", "ref": REF, "result": task})


def test_execute_complete_timeout_cancels_then_fails(api: Any, context: dict) -> None:
    api.delete(f"{TASKS}/T1", json={"task": {"taskState": "CANCELLING"}})
    with pytest.raises(RemoteJobTimeoutError, match="cancelled"):
        run_import(timeout=60).execute_complete(context, {"status": "timeout", "ref": REF, "raw_state": "IN_PROGRESS"})
    assert any(r.method == "DELETE" for r in api.request_history)


def test_execute_complete_timeout_without_cancel(api: Any, context: dict) -> None:
    with pytest.raises(RemoteJobTimeoutError):
        run_import(timeout=60, cancel_on_kill=False).execute_complete(
            context, {"status": "timeout", "ref": REF, "raw_state": "IN_PROGRESS"}
        )
    assert not any(r.method == "DELETE" for r in api.request_history)


@pytest.mark.parametrize("event", [None, {}, {"status": "weird"}, "success"], ids=["none", "empty", "bad", "str"])
def test_execute_complete_rejects_malformed_events(event: Any, context: dict) -> None:
    with pytest.raises(SapplanError, match="unexpected trigger event"):
        run_import().execute_complete(context, event)


def test_execute_complete_error_event(context: dict) -> None:
    with pytest.raises(SapplanError, match="boom"):
        run_import().execute_complete(context, {"status": "error", "ref": REF, "message": "boom"})


def test_poll_in_worker_until_complete(api: Any, context: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", slept.append)
    api.get(
        f"{TASKS}/T1",
        [
            {"json": {"task": {"taskState": "NOT_STARTED"}}},
            {"json": {"task": {"taskState": "IN_PROGRESS"}}},
            {"json": {"task": {"taskState": "COMPLETE", "result": {"successful": True}}}},
        ],
    )
    result = run_import(deferrable=False, poll_interval=1).execute(context)
    assert result["successful"] and slept == [5.0, 7.5]  # never more often than every 5 seconds


def test_worker_timeout_cancels(api: Any, context: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda s: None)
    api.get(f"{TASKS}/T1", json={"task": {"taskState": "IN_PROGRESS"}})
    api.delete(f"{TASKS}/T1", json={})
    with pytest.raises(RemoteJobTimeoutError):
        run_import(deferrable=False, timeout=0.001).execute(context)
    assert any(r.method == "DELETE" for r in api.request_history)


def test_fail_on_warnings(api: Any, context: dict) -> None:
    task = {
        "taskState": "COMPLETE",
        "result": {"successful": True, "details": [{"values": ["warningsRowCount", "2"]}]},
    }
    assert run_import().execute_complete(context, {"status": "success", "ref": REF, "result": task})
    with pytest.raises(RemoteJobFailedError, match="warnings"):
        run_import(fail_on_warnings=True).execute_complete(context, {"status": "success", "ref": REF, "result": task})


def test_on_kill_cancels_and_never_raises(api: Any, context: dict) -> None:
    api.get(f"{TASKS}/T1", json={"task": {"taskState": "IN_PROGRESS"}})
    api.delete(f"{TASKS}/T1", status_code=500)
    op = run_import(deferrable=True)
    with pytest.raises(TaskDeferred):
        op.execute(context)
    op.on_kill()  # 500 after retries: logged, not raised
    assert sum(r.method == "DELETE" for r in api.request_history) >= 1


def test_on_kill_before_start_does_nothing(api: Any) -> None:
    run_import().on_kill()
    assert not any(r.method == "DELETE" for r in api.request_history)


def test_export_downloads_after_success(api: Any, context: dict, tmp_path: Any) -> None:
    export_id = "116000000001"
    ref = {**REF, "action_type": "exports", "action_id": export_id}
    api.get(f"{MODEL_URL}/files/{export_id}/chunks", json={"chunks": [{"id": "0"}]})
    api.get(f"{MODEL_URL}/files/{export_id}/chunks/0", content=b"a,b\n", headers={"Content-Type": "text/csv"})
    op = AnaplanRunExportOperator(task_id="e", export_id=export_id, destination=str(tmp_path / "f.csv"))
    result = op.execute_complete(
        context,
        {
            "status": "success",
            "ref": ref,
            "result": {"taskState": "COMPLETE", "result": {"successful": True}},
        },
    )
    assert result["download"]["bytes"] == 4 and (tmp_path / "f.csv").read_bytes() == b"a,b\n"


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="durable execution needs Airflow 3.3+")
def test_durable_retry_reconnects_instead_of_starting_again(
    api: Any, context: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda s: None)
    api.get(
        f"{TASKS}/T1",
        [
            {"json": {"task": {"taskState": "IN_PROGRESS"}}},
            {"json": {"task": {"taskState": "COMPLETE", "result": {"successful": True}}}},
        ],
    )
    store = mock.MagicMock(spec_set=["get", "set"])
    store.get.return_value = REF
    context = {"ti": mock.MagicMock(stats_tags={}), "task_state_store": store}
    result = run_import(deferrable=False).execute(context)
    assert result["task_id"] == "T1"
    assert not any(r.method == "POST" and r.url == TASKS for r in api.request_history)


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="durable execution needs Airflow 3.3+")
def test_durable_first_run_stores_the_task(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda s: None)
    api.get(f"{TASKS}/T1", json={"task": {"taskState": "COMPLETE", "result": {"successful": True}}})
    store = mock.MagicMock(spec_set=["get", "set"])
    store.get.return_value = None
    run_import(deferrable=False).execute({"ti": mock.MagicMock(stats_tags={}), "task_state_store": store})
    store.set.assert_called_once_with("anaplan_task", REF)


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="durable execution needs Airflow 3.3+")
def test_durable_retry_after_vanished_task_resubmits(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda s: None)
    api.get(re.compile(f"{TASKS}/GONE$"), status_code=404)
    api.get(f"{TASKS}/T1", json={"task": {"taskState": "COMPLETE", "result": {"successful": True}}})
    store = mock.MagicMock(spec_set=["get", "set"])
    store.get.return_value = {**REF, "task_id": "GONE"}
    run_import(deferrable=False).execute({"ti": mock.MagicMock(stats_tags={}), "task_state_store": store})
    assert sum(r.method == "POST" and r.url == TASKS for r in api.request_history) == 1


def test_sensor_pokes_until_complete_and_reads_dumps_on_failure(api: Any, context: dict) -> None:
    from airflow_provider_sapplan.sensors.anaplan import AnaplanTaskSensor

    api.get(
        f"{TASKS}/T1",
        [{"json": {"task": {"taskState": "IN_PROGRESS"}}}, {"json": {"task": FAILED_TASK}}],
    )
    api.get(f"{TASKS}/T1/dump/chunks", json={"chunks": []})
    sensor = AnaplanTaskSensor(task_id="wait", import_id=IMPORT_ID, anaplan_task_id="T1")
    assert sensor.poke(context) is False
    with pytest.raises(RemoteJobFailedError, match="3 row"):
        sensor.poke(context)


def test_deferrable_sensor_never_cancels(api: Any, context: dict) -> None:
    from airflow_provider_sapplan.sensors.anaplan import AnaplanTaskSensor

    api.get(f"{TASKS}/T1", json={"task": {"taskState": "IN_PROGRESS"}})
    sensor = AnaplanTaskSensor(task_id="wait", import_id=IMPORT_ID, anaplan_task_id="T1", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    assert isinstance(deferred.value.trigger, AnaplanTaskTrigger)
    assert deferred.value.trigger.cancel_on_kill is False and deferred.value.trigger.ref["task_id"] == "T1"


def test_sensor_needs_one_action_and_a_task() -> None:
    from airflow_provider_sapplan.sensors.anaplan import AnaplanTaskSensor

    with pytest.raises(ValueError, match="exactly one of import_id"):
        AnaplanTaskSensor(task_id="w", import_id="1", export_id="2", anaplan_task_id="T")
    with pytest.raises(ValueError, match="anaplan_task_id"):
        AnaplanTaskSensor(task_id="w", import_id="1")


def test_model_link_reads_the_pushed_url() -> None:
    from airflow_provider_sapplan.operators.anaplan import AnaplanModelLink

    with mock.patch("airflow_provider_sapplan.core.links.XCom.get_value", return_value="https://x/model") as get:
        assert AnaplanModelLink().get_link(run_import(), ti_key="key") == "https://x/model"
    get.assert_called_once_with(key="anaplan_model_url", ti_key="key")
