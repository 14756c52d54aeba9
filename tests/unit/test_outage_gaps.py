"""Waits the outage window did not cover at first: sensors, and the check an operator makes before deferring.

Before: ``RemoteJobSensor`` took no ``outage_window`` (a deferred sensor always used the default, a poking
sensor failed at the first status check that failed after the HTTP core's retries), and a deferrable
operator whose one status check between starting the job and deferring failed transiently failed the
task, although its job was running (on Airflow 2.11 the retry then started a second job).
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan._compat import TaskDeferred
from airflow_provider_sapplan.exceptions import AuthenticationError, NetworkError, ServiceUnavailableError
from airflow_provider_sapplan.operators.anaplan import AnaplanRunImportOperator
from airflow_provider_sapplan.sensors.anaplan import AnaplanTaskSensor

REF = {"workspace_id": "ws", "model_id": "M", "action_type": "imports", "action_id": "112000000001", "task_id": "T1"}
DONE = {"taskState": "COMPLETE", "result": {"successful": True}}
RUNNING = {"taskState": "IN_PROGRESS"}


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    clock = [1000.0]
    monkeypatch.setattr("airflow_provider_sapplan.core.waiting.time.monotonic", lambda: clock[0])
    return clock


def sensor(**kwargs: Any) -> AnaplanTaskSensor:
    return AnaplanTaskSensor(task_id="wait", import_id="112000000001", anaplan_task_id="T1", **kwargs)


def test_poking_sensor_rides_out_an_outage(now: list[float]) -> None:
    wait = sensor(outage_window=120)
    answers: list[Any] = [RUNNING, NetworkError("refused"), ServiceUnavailableError("503"), RUNNING, DONE]
    with mock.patch.object(AnaplanTaskSensor, "fetch", side_effect=answers) as fetch:
        results = []
        for _ in answers:
            results.append(wait.poke({}))
            now[0] += 50
    assert results == [False, False, False, False, True] and fetch.call_count == 5


def test_poking_sensor_gives_up_after_the_window(now: list[float]) -> None:
    wait = sensor(outage_window=60)
    with mock.patch.object(AnaplanTaskSensor, "fetch", side_effect=NetworkError("refused")):
        assert wait.poke({}) is False
        now[0] += 59
        assert wait.poke({}) is False
        now[0] += 1
        with pytest.raises(NetworkError, match=r"kept failing for 60s .*set outage_window to wait longer"):
            wait.poke({})


def test_a_success_ends_the_outage(now: list[float]) -> None:
    wait = sensor(outage_window=60)
    answers: list[Any] = [NetworkError("down"), RUNNING, NetworkError("down again"), NetworkError("still")]
    with mock.patch.object(AnaplanTaskSensor, "fetch", side_effect=answers):
        for _ in answers:
            assert wait.poke({}) is False  # the second outage starts its own window
            now[0] += 40


def test_permanent_errors_and_a_zero_window_fail_at_once(now: list[float]) -> None:
    with (
        mock.patch.object(AnaplanTaskSensor, "fetch", side_effect=AuthenticationError("bad password")),
        pytest.raises(AuthenticationError),
    ):
        sensor().poke({})
    with (
        mock.patch.object(AnaplanTaskSensor, "fetch", side_effect=NetworkError("refused")),
        pytest.raises(NetworkError, match=r"^refused$"),
    ):
        sensor(outage_window=0).poke({})


def test_rescheduling_sensor_does_not_hold_an_outage_across_pokes(now: list[float]) -> None:
    """In reschedule mode every poke is a new process: it cannot bound an outage, so it fails as before."""
    with (
        mock.patch.object(AnaplanTaskSensor, "fetch", side_effect=NetworkError("refused")),
        pytest.raises(NetworkError, match=r"^refused$"),
    ):
        sensor(mode="reschedule").poke({})


def test_outage_window_reaches_the_sensors_trigger() -> None:
    _, kwargs = sensor(outage_window=42, deferrable=True).make_trigger({"task_id": "T1"}, None).serialize()
    assert kwargs["outage_window"] == 42.0
    _, kwargs = sensor(deferrable=True).make_trigger({"task_id": "T1"}, None).serialize()
    assert kwargs["outage_window"] == 900.0
    with pytest.raises(ValueError, match="outage_window"):
        sensor(outage_window=-5)


# -- the operator's one check between starting the job and deferring --------------------------------


def test_deferrable_operator_defers_when_its_first_check_fails_transiently(anaplan_conn: str) -> None:
    op = AnaplanRunImportOperator(task_id="t", import_id="112000000001", deferrable=True, outage_window=300)
    with (
        mock.patch.object(AnaplanRunImportOperator, "submit", return_value=REF) as submit,
        mock.patch.object(AnaplanRunImportOperator, "fetch", side_effect=NetworkError("refused")) as fetch,
        pytest.raises(TaskDeferred) as deferred,
    ):
        op.execute({"ti": mock.MagicMock()})
    assert submit.call_count == 1 and fetch.call_count == 1
    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["ref"] == REF and kwargs["outage_window"] == 300.0  # the trigger rides the outage out


def test_first_check_failures_that_the_window_does_not_cover_still_fail(anaplan_conn: str) -> None:
    for error, window in ((NetworkError("refused"), 0), (AuthenticationError("bad password"), 900)):
        op = AnaplanRunImportOperator(task_id="t", import_id="112000000001", deferrable=True, outage_window=window)
        with (
            mock.patch.object(AnaplanRunImportOperator, "submit", return_value=REF),
            mock.patch.object(AnaplanRunImportOperator, "fetch", side_effect=error),
            pytest.raises(type(error)),
        ):
            op.execute({"ti": mock.MagicMock()})
