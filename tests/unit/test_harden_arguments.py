"""Issue 8 items 7, 8, 9, 13a: arguments checked when built and after rendering, before any remote call.

Every test counts the requests: a wrong argument must fail with a message naming it and with no
request sent (no task started, no run created, no upload declared, no export run).
"""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import jinja2
import pytest

from airflow_provider_sapplan.core.links import XComUrlLink
from airflow_provider_sapplan.core.validation import ArgumentError
from airflow_provider_sapplan.exceptions import RemoteJobFailedError
from airflow_provider_sapplan.operators.anaplan import (
    AnaplanDownloadFileOperator,
    AnaplanModelLink,
    AnaplanRunExportOperator,
    AnaplanRunImportOperator,
    AnaplanUploadFileOperator,
)
from airflow_provider_sapplan.operators.sap_job_scheduling import (
    SapJobSchedulingCreateJobOperator,
    SapJobSchedulingDeleteJobOperator,
    SapJobSchedulingRunJobOperator,
    SapJobSchedulingSetActiveOperator,
)
from airflow_provider_sapplan.sensors.sap_job_scheduling import SapJobSchedulingRunSensor
from tests.unit.test_anaplan_operators import FAILED_TASK, IMPORT_ID, REF, TASKS
from tests.unit.test_anaplan_operators import api as api
from tests.unit.test_anaplan_operators import context as context
from tests.unit.test_sap_job_scheduling import api as js_api  # noqa: F401 - fixture
from tests.unit.test_sap_job_scheduling import sleeps as sleeps

JOB = {"name": "nightly", "action": "https://app.test/run", "httpMethod": "POST"}


def render(op: Any, **params: Any) -> None:
    """Render the operator's templates as Airflow does (no native objects)."""
    op.render_template_fields({"params": params}, jinja_env=jinja2.Environment())


# -- item 7: shared waiting arguments (core/operator.py and core/sensor.py, every platform) ----------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout": -1}, "timeout must be > 0"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"poll_interval": "10s"}, "poll_interval must be seconds as a number"),
        ({"max_poll_interval": 0}, "max_poll_interval must be > 0"),
        ({"poll_interval": 60, "max_poll_interval": 10}, "max_poll_interval"),
        ({"wait_for_completion": "false"}, "wait_for_completion must be True or False"),
        ({"deferrable": "yes"}, "deferrable must be True or False"),
        ({"cancel_on_kill": 0}, "cancel_on_kill must be True or False"),
        ({"outage_window": -5}, "outage_window must be >= 0"),
    ],
)
def test_shared_waiting_arguments_fail_when_built(kwargs: dict[str, Any], match: str) -> None:
    for build in (
        lambda: AnaplanRunImportOperator(task_id="t", import_id=IMPORT_ID, **kwargs),
        lambda: SapJobSchedulingRunJobOperator(task_id="t", job_id=5, **kwargs),
    ):
        with pytest.raises(ArgumentError, match=match):
            build()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"poke_interval": "10s"}, "poke_interval"), ({"deferrable": "no"}, "deferrable"), ({"timeout": -1}, "timeout")],
)
def test_shared_sensor_arguments_fail_when_built(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ArgumentError, match=match):
        SapJobSchedulingRunSensor(task_id="s", job_id=5, schedule_id="s1", run_id="r1", **kwargs)


def test_timeout_zero_starts_no_anaplan_task(api: Any, context: dict) -> None:
    op = AnaplanRunImportOperator(task_id="t", import_id=IMPORT_ID)
    op.timeout = 0  # e.g. changed after construction: execute checks again before submit
    with pytest.raises(ArgumentError, match="timeout"):
        op.execute(context)
    assert not [r for r in api.request_history if r.method == "POST" and "/tasks" in r.url]


# -- item 7: platform arguments ------------------------------------------------------------------------


def test_set_active_refuses_the_string_false() -> None:
    with pytest.raises(ArgumentError, match=r"active must be True or False.*non-empty string counts as True"):
        SapJobSchedulingSetActiveOperator(task_id="t", job_id=5, active="false")


def test_job_id_must_be_a_number_id() -> None:
    with pytest.raises(ArgumentError, match="job_id must be a whole number id"):
        SapJobSchedulingDeleteJobOperator(task_id="t", job_id="abc")


def test_templated_job_id_rendered_to_text_fails_naming_it(js_api: Any) -> None:  # noqa: F811
    op = SapJobSchedulingRunJobOperator(task_id="t", job_id="{{ params.job }}")
    with pytest.raises(ArgumentError, match="job_id"):
        render(op, job="abc")
    op = SapJobSchedulingRunJobOperator(task_id="t", job_id="{{ params.job }}")
    render(op, job="42")
    assert op.job_id == 42
    assert not js_api.request_history


@pytest.mark.parametrize(("value", "match"), [("10MB", "chunk_size must be a number of bytes"), (10, "between")])
def test_chunk_size_fails_when_built(value: Any, match: str) -> None:
    with pytest.raises(ArgumentError, match=match):
        AnaplanUploadFileOperator(task_id="t", file_id="113000000000", source="/tmp/x.csv", chunk_size=value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_parallel": 0}, "max_parallel"), ({"compress": "yes"}, "compress"), ({"source": 5}, "source must be")],
)
def test_upload_arguments_fail_when_built(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ArgumentError, match=match):
        AnaplanUploadFileOperator(task_id="t", file_id="113000000000", **{"source": "/tmp/x.csv", **kwargs})


def test_fail_on_warnings_must_be_a_bool() -> None:
    with pytest.raises(ArgumentError, match="fail_on_warnings"):
        AnaplanRunImportOperator(task_id="t", import_id=IMPORT_ID, fail_on_warnings="false")


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("DIR", "is a directory"),
        ("MISSING", "does not exist"),
        ("foo://bucket/data.csv", "storage scheme 'foo'"),
        ("s3://bucket/data.csv", "apache-airflow-providers-amazon"),
    ],
)
def test_upload_source_checked_before_the_upload_is_declared(
    api: Any, context: dict, tmp_path: Any, source: str, match: str
) -> None:
    if source == "s3://bucket/data.csv":
        try:
            import airflow.providers.amazon  # noqa: F401

            pytest.skip("the Amazon provider is installed here")
        except ImportError:
            pass
    source = {"DIR": str(tmp_path), "MISSING": str(tmp_path / "nope.csv")}.get(source, source)
    op = AnaplanUploadFileOperator(task_id="t", file_id="113000000000", source=source)
    with pytest.raises(ArgumentError, match=match):
        op.execute(context)
    assert not api.request_history  # no file lookup, no chunkCount declared


def _unwritable(tmp_path: Any) -> str:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("running as a user who can write anywhere")
    return str(locked / "out.csv")


@pytest.mark.parametrize("where", ["dir", "unwritable"])
def test_download_destination_checked_before_the_download(api: Any, context: dict, tmp_path: Any, where: str) -> None:
    destination = str(tmp_path) if where == "dir" else _unwritable(tmp_path)
    op = AnaplanDownloadFileOperator(task_id="t", file_id="113000000000", destination=destination)
    with pytest.raises(ArgumentError, match=r"is a directory|cannot be written"):
        op.execute(context)
    assert not api.request_history


@pytest.mark.parametrize("where", ["dir", "unwritable", "scheme"])
def test_export_destination_checked_before_the_export_runs(api: Any, context: dict, tmp_path: Any, where: str) -> None:
    destination = {"dir": str(tmp_path), "scheme": "foo://b/x.csv"}.get(where) or _unwritable(tmp_path)
    op = AnaplanRunExportOperator(task_id="t", export_id="116000000001", destination=destination)
    with pytest.raises(ArgumentError, match="destination"):
        op.execute(context)
    assert not [r for r in api.request_history if r.method == "POST" and "/tasks" in r.url]


def test_dump_destination_that_is_a_file_fails_before_the_import(api: Any, context: dict, tmp_path: Any) -> None:
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    op = AnaplanRunImportOperator(task_id="t", import_id=IMPORT_ID, dump_destination=str(a_file))
    with pytest.raises(ArgumentError, match=r"dump_destination .* is a file"):
        op.execute(context)
    assert not [r for r in api.request_history if r.method == "POST" and "/tasks" in r.url]


# -- item 9: templated dicts -------------------------------------------------------------------------


def test_templated_data_accepts_a_json_string(js_api: Any) -> None:  # noqa: F811
    op = SapJobSchedulingRunJobOperator(task_id="t", job_id=5, data="{{ params.payload | tojson }}")
    render(op, payload={"a": 1})
    assert op.data == {"a": 1}


def test_templated_data_rendered_as_python_repr_names_native_rendering(js_api: Any) -> None:  # noqa: F811
    op = SapJobSchedulingRunJobOperator(task_id="t", job_id=5, data="{{ params.payload }}")
    with pytest.raises(ArgumentError, match="render_template_as_native_obj=True"):
        render(op, payload={"a": 1})  # renders "{'a': 1}", the repr Job Scheduling used to send
    assert not js_api.request_history


def test_templated_job_definition_accepts_json(js_api: Any) -> None:  # noqa: F811
    import json

    op = SapJobSchedulingCreateJobOperator(task_id="t", job="{{ params.job }}")
    render(op, job=json.dumps(JOB))
    assert op.job == JOB
    with pytest.raises(ArgumentError, match="job must be a dict"):
        SapJobSchedulingCreateJobOperator(task_id="t", job=["not", "a", "dict"])


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("{'Version': 'Actual'}", "render_template_as_native_obj=True"),
        ('["Actual"]', "holds a JSON list"),
        ('{"Version": 1}', "entity names"),
    ],
)
def test_templated_mapping_parameters(payload: str, match: str) -> None:
    op = AnaplanRunImportOperator(task_id="t", import_id=IMPORT_ID, mapping_parameters="{{ params.m }}")
    with pytest.raises(ArgumentError, match=match):
        render(op, m=payload)
    op = AnaplanRunImportOperator(task_id="t", import_id=IMPORT_ID, mapping_parameters="{{ params.m }}")
    render(op, m='{"Version": "Actual"}')
    assert op.mapping_parameters == {"Version": "Actual"}


def test_dict_given_as_python_repr_fails_when_built() -> None:
    with pytest.raises(ArgumentError, match="render_template_as_native_obj=True"):
        SapJobSchedulingRunJobOperator(task_id="t", job_id=5, data="{'a': 1}")


# -- item 8: the import's failure wins over a dump that cannot be saved --------------------------------


def test_failed_import_with_unwritable_dump_destination_keeps_the_import_failure(
    api: Any, context: dict, tmp_path: Any, caplog: Any, capsys: Any
) -> None:
    dump = f"{TASKS}/T1/dump"
    api.get(f"{dump}/chunks", json={"chunks": [{"id": "0"}]})
    api.get(f"{dump}/chunks/0", content=b"h\nr\n", headers={"Content-Type": "text/csv"})
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the dump folder should be")
    op = AnaplanRunImportOperator(task_id="t", import_id=IMPORT_ID, dump_destination=str(tmp_path))
    op.dump_destination = str(blocker / "dumps")  # becomes unwritable after the checks passed
    with pytest.raises(RemoteJobFailedError) as info:
        op.execute_complete(context, {"status": "failed", "ref": REF, "result": FAILED_TASK})
    text = str(info.value)
    assert "task T1" in text and "3 row(s) failed" in text and "saving under" in text
    assert "Could not save the failure dump" in caplog.text + capsys.readouterr().out


# -- item 13a: links of a task that failed before submit ----------------------------------------------


def test_link_is_empty_and_quiet_after_a_failure_before_submit(api: Any, context: dict, tmp_path: Any) -> None:
    op = AnaplanUploadFileOperator(task_id="t", file_id="113000000000", source=str(tmp_path))
    with pytest.raises(ArgumentError):
        op.execute(context)
    with mock.patch("airflow_provider_sapplan.core.links.XCom") as xcom:
        assert AnaplanModelLink().get_link(op, ti_key=mock.MagicMock()) == ""
    xcom.get_value.assert_not_called()  # the lookup is what logs "[error] XCom not found"


def test_link_of_a_run_operator_failing_before_submit(api: Any, context: dict) -> None:
    api.get(f"{TASKS.rsplit('/imports', 1)[0]}/imports", status_code=401, json={})
    op = AnaplanRunImportOperator(task_id="t", import_name="Load", deferrable=False)
    with pytest.raises(Exception):  # noqa: B017 - whatever the lookup raised
        op.execute(context)
    with mock.patch("airflow_provider_sapplan.core.links.XCom") as xcom:
        assert AnaplanModelLink().get_link(op, ti_key=mock.MagicMock()) == ""
    xcom.get_value.assert_not_called()


def test_link_still_read_after_a_successful_push() -> None:
    op = mock.MagicMock(spec=[])
    with mock.patch("airflow_provider_sapplan.core.links.XCom") as xcom:
        xcom.get_value.return_value = "https://x"
        link = type("L", (XComUrlLink,), {"name": "l", "xcom_key": "k"})()
        assert link.get_link(op, ti_key=mock.MagicMock()) == "https://x"


# -- item 13b: an export's success line reports what an export produces ------------------------------

EXPORT_TASK = {
    "taskId": "T1",
    "taskState": "COMPLETE",
    "result": {
        "successful": True,
        "failureDumpAvailable": False,
        "objectId": "116000000001",
        "details": [
            {
                "type": "exportSucceeded",
                "localMessageText": "Export for Grid.csv completed successfully. 48213 bytes written.",
                "values": ["exportName", "Grid.csv", "fileSize", "48213"],
            }
        ],
    },
}
EXPORT_REF = {**REF, "action_type": "exports", "action_id": "116000000001"}


def test_export_success_reports_bytes_written_not_zero_rows(api: Any, context: dict, caplog: Any, capsys: Any) -> None:
    op = AnaplanRunExportOperator(task_id="t", export_id="116000000001")
    summary = op.execute_complete(context, {"status": "success", "ref": EXPORT_REF, "result": EXPORT_TASK})
    assert summary["export"] == {"bytes_written": 48213}
    logged = caplog.text + capsys.readouterr().out
    assert "48213 bytes written" in logged and "successRowCount" not in logged


def test_export_with_destination_counts_downloaded_lines(api: Any, context: dict, tmp_path: Any) -> None:
    files = TASKS.split("/imports/")[0] + "/files/116000000001"
    api.get(f"{files}/chunks", json={"chunks": [{"id": "0"}, {"id": "1"}]})
    api.get(f"{files}/chunks/0", content=b"h\nr1\n")
    api.get(f"{files}/chunks/1", content=b"r2\nr3")
    op = AnaplanRunExportOperator(task_id="t", export_id="116000000001", destination=str(tmp_path / "o.csv"))
    summary = op.execute_complete(context, {"status": "success", "ref": EXPORT_REF, "result": EXPORT_TASK})
    assert summary["export"] == {"bytes_written": 48213, "lines": 4}
    assert summary["download"]["bytes"] == 10


def test_xcom_arguments_are_checked_at_run_time_not_when_built() -> None:
    """An upstream task's output (an XComArg) is only known at run time: building must accept it."""
    try:
        from airflow.sdk import DAG
    except ImportError:  # Airflow 2
        from airflow.models.dag import DAG
    from airflow_provider_sapplan.core.validation import is_template

    with DAG("xcom_args", schedule=None):
        upstream = SapJobSchedulingCreateJobOperator(task_id="ensure", job=JOB)
        run = SapJobSchedulingRunJobOperator(task_id="run", job_id=upstream.output)
        upload = AnaplanUploadFileOperator(task_id="up", file_id="113000000000", source=upstream.output)
    assert is_template(run.job_id) and is_template(upload.source)
