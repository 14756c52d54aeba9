"""SAP Analytics Cloud operators, sensors and triggers with mocked HTTP (requests-mock) or mocked async hooks."""

from __future__ import annotations

import json
import logging
import re
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan._compat import AIRFLOW_V_3_3_PLUS, TaskDeferred
from airflow_provider_sapplan.core.patience import call_until_accepted
from airflow_provider_sapplan.exceptions import (
    InvalidRequestError,
    RemoteJobFailedError,
    RemoteJobTimeoutError,
    ResourceBusyError,
)
from airflow_provider_sapplan.jobs.sap_analytics_cloud import (
    REFRESH_CODES,
    find_run,
    import_counts,
    import_outcome,
    parameter_values,
    row_batches,
)
from airflow_provider_sapplan.operators.sap_analytics_cloud import (
    SapAnalyticsCloudImportDataOperator,
    SapAnalyticsCloudRunMultiActionOperator,
    SapAnalyticsCloudRunScheduleOperator,
)
from airflow_provider_sapplan.sensors.sap_analytics_cloud import (
    SapAnalyticsCloudImportJobSensor,
    SapAnalyticsCloudScheduleSensor,
)
from airflow_provider_sapplan.triggers.sap_analytics_cloud import (
    SapAnalyticsCloudImportJobTrigger,
    SapAnalyticsCloudMultiActionTrigger,
    SapAnalyticsCloudScheduleTrigger,
)
from tests.conftest import set_connection

HOST = "https://acme.eu10.hcs.cloud.sap"
TOKEN_URL = "https://acme.authentication.eu10.hana.ondemand.com/oauth/token"
DI = f"{HOST}/api/v1/dataimport"
DM = f"{HOST}/sap/fpa/services/rest/fpa/dataintegration"
METADATA = {
    "factData": {
        "keys": ["Version", "Date"],
        "columns": [
            {"columnName": "Version", "isKey": True},
            {"columnName": "Date", "isKey": True},
            {"columnName": "SignedData", "isKey": False},
        ],
    }
}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> Any:
    monkeypatch.setattr("airflow_provider_sapplan.core.http.time.sleep", lambda s: None)
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda s: None)
    set_connection(
        monkeypatch,
        "sap_analytics_cloud_default",
        conn_type="sap_analytics_cloud",
        host=HOST,
        login="cid",
        password="secret",
        extra={"token_url": TOKEN_URL, "tenant": "G", "refresh_token": "rt"},
    )
    requests_mock.post(TOKEN_URL, json={"access_token": "tok", "expires_in": 3600})
    requests_mock.get(f"{HOST}/api/v1/csrf", headers={"x-csrf-token": "c"}, json={})
    requests_mock.get(f"{DI}/models/M1/metadata", json=METADATA)
    return requests_mock


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": mock.MagicMock()}


def write_csv(path: Path, rows: int) -> Path:
    with path.open("w") as handle:
        handle.write("Version,Month,Amount\n")
        for i in range(rows):
            handle.write(f"public.Forecast,2026{i % 12 + 1:02d},{i}.5\n")
    return path


def import_op(**kwargs: Any) -> SapAnalyticsCloudImportDataOperator:
    defaults = {"task_id": "imp", "model_id": "M1", "mapping": {"Date": "Month", "SignedData": "Amount"}}
    return SapAnalyticsCloudImportDataOperator(**{**defaults, **kwargs})


def posts(api: Any, suffix: str) -> list[Any]:
    return [r for r in api.request_history if r.method == "POST" and r.path.endswith(suffix.lower())]


# -- Data Import ------------------------------------------------------------------------------------


def test_import_pushes_batches_validates_runs_and_waits(api: Any, context: dict[str, Any], tmp_path: Path) -> None:
    source = write_csv(tmp_path / "f.csv", 25)
    api.post(f"{DI}/models/M1/factData", json={"JobID": "J1"})  # create-job pages write JobID
    api.post(f"{DI}/jobs/J1", json={"failedNumberRows": 0})
    api.post(f"{DI}/jobs/J1/validate", status_code=201, json={"jobStatus": "READY_FOR_WRITE", "failedNumberRows": 0})
    api.post(f"{DI}/jobs/J1/run", json={"jobStatus": "PROCESSING"})
    api.get(
        f"{DI}/jobs/J1/status",
        [
            {"json": {"jobStatus": "PROCESSING"}},
            {"json": {"jobStatus": "Something_New"}},
            {
                "json": {
                    "jobStatus": "COMPLETED",
                    "additionalInformation": {"totalNumberRowsInJob": "25", "failedNumberRows": "0"},
                }
            },
        ],
    )
    result = import_op(source=str(source), batch_size=10, deferrable=False).execute(context)
    assert result["totalNumberRowsInJob"] == 25 and result["failedNumberRows"] == 0 and result["owned"] is True
    batches = [r.json()["Data"] for r in posts(api, "/jobs/J1")]
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[0][0] == {"Version": "public.Forecast", "Month": "202601", "Amount": "0.5"}
    create = posts(api, "/models/M1/factData")[0].json()
    assert create == {"Mapping": {"Date": "Month", "SignedData": "Amount"}}
    context["ti"].xcom_push.assert_any_call(key="sap_analytics_cloud_import_job", value=mock.ANY)
    assert posts(api, "/run")[0].json() == {}


def test_lost_answer_while_staging_restages_in_a_new_job_and_runs_once(
    api: Any, context: dict[str, Any], tmp_path: Path
) -> None:
    """A push whose answer is lost may have staged its rows: that job is deleted, a new one staged."""
    source = write_csv(tmp_path / "f.csv", 25)
    api.post(f"{DI}/models/M1/factData", [{"json": {"JobID": "J1"}}, {"json": {"JobID": "J2"}}])
    api.post(f"{DI}/jobs/J1", [{"json": {}}, {"status_code": 502, "text": "Bad Gateway"}])
    api.delete(f"{DI}/jobs/J1", status_code=200, json={})
    api.post(f"{DI}/jobs/J2", json={})
    api.post(f"{DI}/jobs/J2/validate", json={"jobStatus": "READY_FOR_WRITE", "failedNumberRows": 0})
    api.post(f"{DI}/jobs/J2/run", json={"jobStatus": "PROCESSING"})
    done = {"jobStatus": "COMPLETED", "additionalInformation": {"totalNumberRowsInJob": "25", "failedNumberRows": "0"}}
    api.get(f"{DI}/jobs/J2/status", json=done)
    result = import_op(source=str(source), batch_size=10, deferrable=False).execute(context)
    assert result["job_id"] == "J2" and result["totalNumberRowsInJob"] == 25
    assert [r.method for r in api.request_history if r.path.endswith("/jobs/j1")] == ["POST", "POST", "DELETE"]
    assert [len(r.json()["Data"]) for r in posts(api, "/jobs/J2")] == [10, 10, 5]  # every row, once, in J2
    assert len(posts(api, "/run")) == 1 and posts(api, "/run")[0].path.endswith("/jobs/j2/run")


def test_unknown_column_fails_before_any_job_or_row(api: Any, context: dict[str, Any], tmp_path: Path) -> None:
    source = tmp_path / "f.csv"
    source.write_text("Version,Month,Amout\nv,1,2\n")
    with pytest.raises(InvalidRequestError) as err:
        import_op(source=str(source)).execute(context)
    assert "'Amout'" in err.value.message and "Version, Date, SignedData" in err.value.message
    assert not [r for r in api.request_history if r.method == "POST" and "/dataimport/" in r.path]


def test_busy_model_waits_and_retries_within_the_timeout(api: Any, context: dict[str, Any]) -> None:
    busy = {"status_code": 400, "json": {"message": "[1007] The model has reached the maximum number of active jobs"}}
    api.post(f"{DI}/models/M1/factData", [busy, busy, {"json": {"jobID": "J1"}}])
    api.post(f"{DI}/jobs/J1", json={})
    api.post(f"{DI}/jobs/J1/validate", json={"failedNumberRows": 0})
    api.post(f"{DI}/jobs/J1/run", json={})
    api.get(f"{DI}/jobs/J1/status", json={"jobStatus": "COMPLETED"})
    with mock.patch("airflow_provider_sapplan.core.patience.time.sleep") as slept:
        import_op(
            rows=[{"Version": "v", "Date": "d", "SignedData": 1}], mapping=None, timeout=600, deferrable=False
        ).execute(context)
    assert len(posts(api, "/models/M1/factData")) == 3 and slept.call_count == 2


def test_busy_error_is_raised_at_the_deadline() -> None:
    calls = []

    def refuse() -> None:
        calls.append(1)
        raise ResourceBusyError("[1002] max")

    with pytest.raises(ResourceBusyError):
        call_until_accepted(refuse, busy=(ResourceBusyError,), deadline=time.time() - 1, what="x", sleep=lambda s: None)
    assert len(calls) == 1


def test_validation_failures_delete_the_job_and_keep_invalid_rows(
    api: Any, context: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api.post(f"{DI}/models/M1/factData", json={"jobID": "J1"})
    api.post(f"{DI}/jobs/J1", json={})
    api.post(f"{DI}/jobs/J1/validate", json={"jobStatus": "READY_FOR_WRITE", "failedNumberRows": 2})
    invalid = [{"row": {"SignedData": "x"}, "reason": "not a number"}, {"row": {}, "reason": "key missing"}]
    api.get(f"{DI}/jobs/J1/invalidRows", json={"failedRows": invalid})
    api.delete(f"{DI}/jobs/J1", status_code=204)
    keep = tmp_path / "invalid.jsonl"
    with caplog.at_level(logging.WARNING), pytest.raises(RemoteJobFailedError) as err:
        import_op(rows=[{"Version": "v"}], mapping=None, invalid_rows_destination=str(keep)).execute(context)
    assert "2 invalid row(s)" in err.value.message and "nothing was written" in err.value.message
    assert "deleted" in err.value.message and "allow_failed_rows" in err.value.message
    assert not posts(api, "/run")
    assert [r.method for r in api.request_history if r.path.endswith("/jobs/j1")].count("DELETE") == 1
    assert [json.loads(line) for line in keep.read_text().splitlines()] == invalid
    assert "not a number" in caplog.text


def test_allow_failed_rows_runs_with_override(api: Any, context: dict[str, Any]) -> None:
    api.post(f"{DI}/models/M1/factData", json={"jobID": "J1"})
    api.post(f"{DI}/jobs/J1", json={})
    api.post(f"{DI}/jobs/J1/validate", json={"failedNumberRows": 1})
    api.post(f"{DI}/jobs/J1/run", json={})
    api.get(f"{DI}/jobs/J1/status", json={"jobStatus": "COMPLETED", "additionalInformation": {"failedNumberRows": "1"}})
    api.get(f"{DI}/jobs/J1/invalidRows", json=[{"reason": "x"}])
    result = import_op(rows=[{"Version": "v"}], mapping=None, allow_failed_rows=True, deferrable=False).execute(context)
    assert result["failedNumberRows"] == 1
    assert posts(api, "/run")[0].json() == {"overrideExecuteWithFailedRows": True}


def test_failed_job_is_deleted_and_named(api: Any, context: dict[str, Any]) -> None:
    api.get(f"{DI}/jobs/J1/invalidRows", json={"failedRows": []})
    api.delete(f"{DI}/jobs/J1", status_code=204)
    event = {
        "status": "failed",
        "ref": {"job_id": "J1", "model_id": "M1", "owned": True},
        "result": {"jobStatus": "FAILED", "jobStatusDescription": "write failed"},
    }
    with pytest.raises(RemoteJobFailedError, match="ended FAILED: write failed"):
        import_op(rows=[{}], mapping=None).execute_complete(context, event)
    assert api.request_history[-1].method == "DELETE"


def test_push_failure_deletes_the_job(api: Any, context: dict[str, Any]) -> None:
    api.post(f"{DI}/models/M1/factData", json={"jobID": "J1"})
    api.post(f"{DI}/jobs/J1", status_code=400, json={"message": "[1006] invalid body"})
    api.delete(f"{DI}/jobs/J1", status_code=204)
    with pytest.raises(InvalidRequestError, match="1006"):
        import_op(rows=[{"Version": "v"}], mapping=None).execute(context)
    assert api.request_history[-1].method == "DELETE"


def test_on_kill_and_timeout_delete_the_owned_job(api: Any, context: dict[str, Any]) -> None:
    api.delete(f"{DI}/jobs/J1", status_code=204)
    op = import_op(rows=[{}], mapping=None, timeout=5)
    op._ref = {"job_id": "J1", "owned": True}
    op.on_kill()
    with pytest.raises(RemoteJobTimeoutError):
        op.execute_complete(
            context, {"status": "timeout", "ref": {"job_id": "J1", "owned": True}, "raw_state": "PROCESSING"}
        )
    assert [r.path for r in api.request_history if r.method == "DELETE"] == ["/api/v1/dataimport/jobs/j1"] * 2


def test_deferrable_import_defers_with_ids_only(api: Any, context: dict[str, Any]) -> None:
    api.post(f"{DI}/models/M1/factData", json={"jobID": "J1"})
    api.post(f"{DI}/jobs/J1", json={})
    api.post(f"{DI}/jobs/J1/validate", json={"failedNumberRows": "0"})
    api.post(f"{DI}/jobs/J1/run", json={})
    api.get(f"{DI}/jobs/J1/status", json={"jobStatus": "PROCESSING"})
    with pytest.raises(TaskDeferred) as deferred:
        import_op(rows=[{"Version": "v"}], mapping=None, deferrable=True).execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SapAnalyticsCloudImportJobTrigger)
    assert trigger.serialize()[1]["ref"] == {"job_id": "J1", "model_id": "M1", "import_type": "factData", "owned": True}
    assert "secret" not in json.dumps(trigger.serialize()) and "tok" not in json.dumps(trigger.serialize()[1]["ref"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"import_type": "facts"}, "import_type"),
        ({"source": "a.csv"}, "exactly one"),
        ({"rows": None}, "exactly one"),
        ({"job_settings": {"importMethod": "Replace"}}, "importMethod"),
        ({"job_settings": {"mode": 1}}, "unknown key"),
        ({"batch_size": 0}, "batch_size"),
        ({"mapping": {"Date": 1}}, "mapping"),
    ],
)
def test_import_arguments_checked_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        import_op(**{"rows": [{}], **kwargs})


def test_templated_arguments_checked_after_rendering(api: Any, context: dict[str, Any]) -> None:
    op = import_op(rows=[{}], import_type="{{ params.kind }}")
    op.import_type = "facts"  # what rendering produced
    with pytest.raises(ValueError, match="import_type"):
        op.execute(context)
    assert not [r for r in api.request_history if "/dataimport/" in r.path]


def test_batches_stream_a_large_csv_in_bounded_memory(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "big.csv", 200_000)  # ~5 MB, ~60 MB as dicts
    assert source.stat().st_size > 4_000_000
    tracemalloc.start()
    count = batches = 0
    for batch in row_batches(str(source), None, 1000):
        count += len(batch)
        batches += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 200_000 and batches == 200
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes: the file was held whole"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("READY_FOR_DATA", "running"),
        ("ready_for_write", "running"),
        ("PROCESSING", "running"),
        ("COMPLETED", "succeeded"),
        ("FAILED", "failed"),
        ("NEW_STATE", "running"),
    ],
)
def test_import_job_statuses(status: str, outcome: str) -> None:
    assert import_outcome({"jobStatus": status}).value == outcome


def test_counts_arrive_as_strings() -> None:
    assert import_counts({"additionalInformation": {"totalNumberRowsInJob": "12", "failedNumberRows": "0"}}) == {
        "totalNumberRowsInJob": 12,
        "failedNumberRows": 0,
    }


def test_import_sensor_never_deletes(api: Any, context: dict[str, Any]) -> None:
    api.get(f"{DI}/jobs/J9/status", json={"jobStatus": "FAILED"})
    api.get(f"{DI}/jobs/J9/invalidRows", json=[])
    sensor = SapAnalyticsCloudImportJobSensor(task_id="s", job_id="J9", deferrable=False, poke_interval=5)
    with pytest.raises(RemoteJobFailedError):
        sensor.poke(context)
    assert not [r for r in api.request_history if r.method == "DELETE"]


# -- Multi Actions ----------------------------------------------------------------------------------

MA = f"{HOST}/api/v1/multiActions/t.G:MA1/executions"


def ma_op(**kwargs: Any) -> SapAnalyticsCloudRunMultiActionOperator:
    return SapAnalyticsCloudRunMultiActionOperator(
        **{
            "task_id": "ma",
            "multi_action_id": "t.G:MA1",
            "parameters": {"Version": ["public.Forecast"], "Rate": 1.05},
            **kwargs,
        }
    )


def test_parameters_become_parameter_values() -> None:
    assert parameter_values(
        {"Version": ["public.Forecast"], "Rate": 1.05, "H": {"memberIds": ["a"], "hierarchyId": "H1"}}
    ) == [
        {"parameterId": "Version", "value": {"memberIds": ["public.Forecast"]}},
        {"parameterId": "Rate", "value": 1.05},
        {"parameterId": "H", "value": {"memberIds": ["a"], "hierarchyId": "H1"}},
    ]


@pytest.mark.parametrize("final", ["Success", "successful", "SUCCESS"])
def test_multi_action_runs_and_waits(api: Any, context: dict[str, Any], final: str) -> None:
    api.post(MA, status_code=202, json={"executionId": "E1"})
    api.get(f"{MA}/E1", [{"json": {"status": "Running"}}, {"json": {"status": final}}])
    result = ma_op(deferrable=False).execute(context)
    assert result["status"] == final and result["execution_id"] == "E1"
    assert posts(api, "/executions")[0].json()["parameterValues"][0] == {
        "parameterId": "Version",
        "value": {"memberIds": ["public.Forecast"]},
    }


def test_warning_succeeds_with_a_log_unless_asked(context: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    event = {
        "status": "success",
        "ref": {"multi_action_id": "t.G:MA1", "execution_id": "E1"},
        "result": {"status": "Warning", "messages": [{"message": "step 2 changed nothing"}]},
    }
    with caplog.at_level(logging.WARNING):
        assert ma_op().execute_complete(context, event)["status"] == "Warning"
    assert "step 2 changed nothing" in caplog.text
    with pytest.raises(RemoteJobFailedError, match="ended Warning: step 2 changed nothing"):
        ma_op(fail_on_warning=True).execute_complete(context, event)


@pytest.mark.parametrize("status", ["Error", "failed", "FAILED"])
def test_errors_fail_with_their_messages(context: dict[str, Any], status: str) -> None:
    event = {
        "status": "failed",
        "ref": {"multi_action_id": "t.G:MA1", "execution_id": "E1"},
        "result": {"status": status, "messages": ["no value provided for parameter Version"]},
    }
    with pytest.raises(RemoteJobFailedError, match="no value provided for parameter Version"):
        ma_op().execute_complete(context, event)


@pytest.mark.parametrize("bad", ["MA1", "t.G/MA1", "t.G:MA:1", ""])
def test_multi_action_id_needs_package_and_object(bad: str) -> None:
    with pytest.raises(ValueError, match="package"):
        ma_op(multi_action_id=bad)


# -- data-management schedules -------------------------------------------------------------------------

SCHEDULE = "F58CA15F78AA9039E200586F05E2BB93"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def logs(*runs: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": 200,
        "data": [{"scheduleId": SCHEDULE, "mappingId": "MAP", "status": "STOPPED", "refreshLogs": list(runs)}],
    }


def log_run(code: int, start: float, execution: str = "X1", rejected: int = 0) -> dict[str, Any]:
    return {
        "executionId": execution,
        "status": code,
        "startTime": iso(start),
        "wranglingAndUpdateResult": {
            "data": {"allCount": 10, "rejectedCount": rejected, "insertedCount": 10 - rejected}
        },
    }


def schedule_op(**kwargs: Any) -> SapAnalyticsCloudRunScheduleOperator:
    return SapAnalyticsCloudRunScheduleOperator(
        **{"task_id": "dm", "schedule_id": SCHEDULE, "mapping_id": "MAP", "model_name": "t.G:M", **kwargs}
    )


def dm_calls(api: Any, action: str) -> list[Any]:
    return [r for r in api.request_history if r.path.endswith("dataintegration") and r.qs["action"] == [action.lower()]]


def test_schedule_run_waits_for_its_log(api: Any, context: dict[str, Any]) -> None:
    now = time.time()
    old = log_run(1, now - 3600, "OLD")
    api.post(
        re.compile(f"{DM}\\?action=getScheduleLogsByModel"),
        [
            {"json": logs(old)},  # in-flight check
            {"json": logs(old)},  # executions already logged
            {"json": logs(old)},  # no log yet
            {"json": logs(old, log_run(5, now + 1, "NEW"))},
            {"json": logs(old, log_run(1, now + 1, "NEW"))},
        ],
    )
    api.post(re.compile(f"{DM}\\?action=runScheduledJob"), json={"status": 200, "data": {"scheduleId": SCHEDULE}})
    result = schedule_op(deferrable=False).execute(context)
    assert result["execution_id"] == "NEW" and result["state"] == "1" and result["insertedCount"] == 10
    assert dm_calls(api, "runScheduledJob")[0].json() == {"scheduleId": SCHEDULE, "mappingId": "MAP"}
    assert dm_calls(api, "runScheduledJob")[0].qs["tenant"] == ["g"]


def test_run_payload_replaces_the_body(api: Any, context: dict[str, Any]) -> None:
    api.post(re.compile(f"{DM}\\?action=getScheduleLogsByModel"), json=logs())
    api.post(re.compile(f"{DM}\\?action=runScheduledJob"), json={"status": 200, "data": {}})
    with pytest.raises(TaskDeferred):
        schedule_op(run_payload={"dataImportName": SCHEDULE, "mappingIds": ["MAP"]}, deferrable=True).execute(context)
    assert dm_calls(api, "runScheduledJob")[0].json() == {"dataImportName": SCHEDULE, "mappingIds": ["MAP"]}


def test_refuses_to_start_while_a_run_is_in_flight(api: Any, context: dict[str, Any]) -> None:
    api.post(re.compile(f"{DM}\\?action=getScheduleLogsByModel"), json=logs(log_run(5, time.time() - 30)))
    with pytest.raises(ResourceBusyError, match="wait_for_running_run=True"):
        schedule_op().execute(context)
    assert not dm_calls(api, "runScheduledJob")


def test_waits_for_the_run_in_flight_when_asked(api: Any, context: dict[str, Any]) -> None:
    start = time.time() - 30
    api.post(
        re.compile(f"{DM}\\?action=getScheduleLogsByModel"),
        [{"json": logs(log_run(5, start))}, {"json": logs(log_run(5, start))}, {"json": logs(log_run(1, start))}],
    )
    api.post(re.compile(f"{DM}\\?action=runScheduledJob"), json={"status": 200, "data": {}})
    with mock.patch("airflow_provider_sapplan.core.patience.time.sleep") as slept, pytest.raises(TaskDeferred):
        schedule_op(wait_for_running_run=True, deferrable=True).execute(context)
    assert slept.call_count == 1 and len(dm_calls(api, "runScheduledJob")) == 1


def test_tenant_required_before_any_call(api: Any, context: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(
        monkeypatch,
        "sap_analytics_cloud_default",
        conn_type="sap_analytics_cloud",
        host=HOST,
        login="c",
        password="s",
        extra={"token_url": TOKEN_URL},
    )
    with pytest.raises(Exception, match="tenant"):
        schedule_op().execute(context)
    assert api.request_history == []


def test_no_log_within_grace_window_fails_clearly(context: dict[str, Any]) -> None:
    ref = {
        "schedule_id": SCHEDULE,
        "model_name": "t.G:M",
        "started_after": time.time() - 700,
        "skew": 120,
        "log_deadline": time.time() - 100,
    }
    op = schedule_op()
    with mock.patch.object(type(op.hook), "schedule_logs", return_value=logs()["data"]):
        status = op.fetch(ref)
    assert status["state"] == "NO_LOG"
    with pytest.raises(RemoteJobFailedError, match=r"no run of schedule .* within the grace window"):
        op.execute_complete(context, {"status": "failed", "ref": ref, "result": status})
    ref["log_deadline"] = time.time() + 100
    with mock.patch.object(type(op.hook), "schedule_logs", return_value=logs()["data"]):
        assert op.fetch(ref)["state"] == "NO_LOG_YET"


@pytest.mark.parametrize(
    ("code", "outcome"), [(5, "running"), (1, "succeeded"), (2, "succeeded"), (3, "failed"), (4, "failed")]
)
def test_refresh_log_codes(code: int, outcome: str) -> None:
    assert REFRESH_CODES.outcome(str(code)).value == outcome


@pytest.mark.parametrize("code", [3, 4])
def test_cancelled_and_stopped_runs_fail(context: dict[str, Any], code: int) -> None:
    ref = {"schedule_id": SCHEDULE, "model_name": "t.G:M", "started_after": 0}
    with pytest.raises(RemoteJobFailedError, match=f"code {code}"):
        schedule_op().execute_complete(
            context, {"status": "failed", "ref": ref, "result": {"state": str(code), "run": {}}}
        )


def test_rejected_rows_fail_with_counts_and_keep_the_csv(
    api: Any, context: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    csv_text = "Source,Target,Issue,Value,Records\nProduct,Product,Member does not exist,P900,1\n"
    api.get(
        f"{HOST}/wrangling/api/dm/executions/X1/rejections?app=SAC", text=csv_text, headers={"Content-Type": "text/csv"}
    )
    ref = {"schedule_id": SCHEDULE, "model_name": "t.G:M", "started_after": 0}
    event = {"status": "success", "ref": ref, "result": {"state": "2", "run": log_run(2, 0, "X1", rejected=3)}}
    keep = tmp_path / "rej.csv"
    with caplog.at_level(logging.WARNING), pytest.raises(RemoteJobFailedError, match="7 inserted, 3 rejected of 10"):
        schedule_op(rejections_destination=str(keep)).execute_complete(context, event)
    assert keep.read_text() == csv_text and "P900" in caplog.text
    assert schedule_op(fail_on_rejected_rows=False).execute_complete(context, event)["rejectedCount"] == 3


def test_run_matching_allows_clock_skew_and_skips_known_runs() -> None:
    now = time.time()
    entries = logs(log_run(1, now - 90, "A"), log_run(1, now - 60, "B"), log_run(1, now - 500, "OLD"))["data"]
    assert find_run(entries, SCHEDULE, now, 120)["executionId"] == "A"
    assert find_run(entries, SCHEDULE, now, 120, exclude=["A"])["executionId"] == "B"
    assert find_run(entries, SCHEDULE, now, 30) is None
    assert find_run(entries, "OTHER", now - 1000, 0) is None


def test_schedule_sensor_defaults_to_data_interval_start(api: Any) -> None:
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    api.post(re.compile(f"{DM}\\?action=getScheduleLogsByModel"), json=logs(log_run(1, start.timestamp() + 10, "S1")))
    sensor = SapAnalyticsCloudScheduleSensor(
        task_id="s", schedule_id=SCHEDULE, model_name="t.G:M", deferrable=False, poke_interval=5
    )
    result = sensor.execute({"ti": mock.MagicMock(), "data_interval_start": start})
    assert result["execution_id"] == "S1"


# -- triggers -----------------------------------------------------------------------------------------


async def run_trigger(trigger: Any) -> list[Any]:
    return [event async for event in trigger.run()]


@pytest.mark.parametrize(("status", "event"), [("COMPLETED", "success"), ("FAILED", "failed")])
async def test_import_trigger_events(status: str, event: str) -> None:
    with mock.patch(
        "airflow_provider_sapplan.hooks.sap_analytics_cloud.SapAnalyticsCloudHook.aimport_job_status",
        return_value={"jobStatus": status},
    ):
        (fired,) = await run_trigger(SapAnalyticsCloudImportJobTrigger(conn_id="c", ref={"job_id": "J1"}))
    assert fired.payload["status"] == event and fired.payload["raw_state"] == status


async def test_import_trigger_on_kill_deletes_owned_job_only() -> None:
    with mock.patch(
        "airflow_provider_sapplan.hooks.sap_analytics_cloud.SapAnalyticsCloudHook.adelete_import_job"
    ) as delete:
        await SapAnalyticsCloudImportJobTrigger(conn_id="c", ref={"job_id": "J1", "owned": True}).on_kill()
        await SapAnalyticsCloudImportJobTrigger(conn_id="c", ref={"job_id": "J2", "owned": False}).on_kill()
    delete.assert_called_once_with("J1")


@pytest.mark.parametrize(("status", "event"), [("Success", "success"), ("warning", "success"), ("ERROR", "failed")])
async def test_multi_action_trigger_events(status: str, event: str) -> None:
    with mock.patch(
        "airflow_provider_sapplan.hooks.sap_analytics_cloud.SapAnalyticsCloudHook.amulti_action_execution",
        return_value={"status": status},
    ):
        (fired,) = await run_trigger(
            SapAnalyticsCloudMultiActionTrigger(conn_id="c", ref={"multi_action_id": "a:b", "execution_id": "E"})
        )
    assert fired.payload["status"] == event


async def test_schedule_trigger_times_out_the_grace_window_as_failure() -> None:
    ref = {
        "schedule_id": SCHEDULE,
        "model_name": "t.G:M",
        "started_after": time.time(),
        "skew": 0,
        "log_deadline": time.time() - 1,
    }
    with mock.patch(
        "airflow_provider_sapplan.hooks.sap_analytics_cloud.SapAnalyticsCloudHook.aschedule_logs",
        return_value=logs()["data"],
    ):
        (fired,) = await run_trigger(SapAnalyticsCloudScheduleTrigger(conn_id="c", ref=ref))
    assert fired.payload["status"] == "failed" and fired.payload["raw_state"] == "NO_LOG"


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="durable execution needs Airflow 3.3+")
def test_durable_retry_reconnects_to_its_import_job(api: Any) -> None:
    api.get(f"{DI}/jobs/J1/status", [{"json": {"jobStatus": "PROCESSING"}}, {"json": {"jobStatus": "COMPLETED"}}])
    store = mock.MagicMock(spec_set=["get", "set"])
    store.get.return_value = {"job_id": "J1", "model_id": "M1", "import_type": "factData", "owned": True}
    result = import_op(rows=[{"Version": "v"}], mapping=None, deferrable=False).execute(
        {"ti": mock.MagicMock(stats_tags={}), "task_state_store": store}
    )
    assert result["job_id"] == "J1"
    assert not [r for r in api.request_history if r.method == "POST" and "/dataimport/" in r.path]


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"started_after": "yesterday"}, "ISO-8601"), ({"clock_skew": -1}, "negative")]
)
def test_schedule_sensor_arguments_checked_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SapAnalyticsCloudScheduleSensor(task_id="s", schedule_id=SCHEDULE, model_name="t.G:M", **kwargs)
