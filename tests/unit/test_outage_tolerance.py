"""Long waits ride out a platform outage of bounded length, in the triggerer and in the worker."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan.core.waiting import OutageTolerance
from airflow_provider_sapplan.exceptions import AuthenticationError, NetworkError, ServiceUnavailableError
from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
from airflow_provider_sapplan.operators.anaplan import AnaplanRunImportOperator
from airflow_provider_sapplan.triggers.anaplan import AnaplanTaskTrigger

REF = {"workspace_id": "ws", "model_id": "M", "action_type": "imports", "action_id": "112000000001", "task_id": "T1"}
DONE = {"taskState": "COMPLETE", "result": {"successful": True}}


class FakeClock:
    """Monotonic and wall clocks that advance only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    async def asleep(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("airflow_provider_sapplan.core.waiting.time.monotonic", lambda: fake.now)
    monkeypatch.setattr("airflow_provider_sapplan.core.trigger.time.time", lambda: fake.now)
    monkeypatch.setattr("airflow_provider_sapplan.core.trigger.asyncio.sleep", fake.asleep)
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.time", lambda: fake.now)
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", fake.sleep)
    return fake


def test_tolerance_rules() -> None:
    now = [0.0]
    outage = OutageTolerance(60, clock=lambda: now[0])
    assert not outage.tolerate(AuthenticationError("no"))  # permanent errors never
    assert outage.tolerate(NetworkError("down"))
    now[0] = 59
    assert outage.tolerate(ServiceUnavailableError("503"))
    now[0] = 60
    assert not outage.tolerate(NetworkError("still down"))
    outage.recovered()
    assert outage.tolerate(NetworkError("down again"))  # a new outage starts its own window
    assert not OutageTolerance(0).tolerate(NetworkError("down"))
    with pytest.raises(ValueError, match="outage_window"):
        OutageTolerance(-1)


async def test_trigger_waits_through_a_five_minute_outage(clock: FakeClock) -> None:
    answers: list[Any] = [{"taskState": "IN_PROGRESS"}] + [NetworkError("refused")] * 9 + [DONE]
    fetch = mock.AsyncMock(side_effect=answers)
    with mock.patch.object(AnaplanHook, "aget_task", fetch):
        events = [e async for e in AnaplanTaskTrigger(conn_id="c", ref=REF, poll_interval=5).run()]
    assert [e.payload["status"] for e in events] == ["success"]
    assert fetch.await_count == 11 and clock.now - 1000 > 300


async def test_trigger_gives_up_after_the_window(clock: FakeClock) -> None:
    fetch = mock.AsyncMock(side_effect=NetworkError("refused"))
    trigger = AnaplanTaskTrigger(conn_id="c", ref=REF, poll_interval=5, outage_window=120)
    with mock.patch.object(AnaplanHook, "aget_task", fetch):
        events = [e async for e in trigger.run()]
    assert [e.payload["status"] for e in events] == ["error"]
    assert "kept failing for 1" in events[0].payload["message"] and "outage_window" in events[0].payload["message"]
    assert 120 <= clock.now - 1000 < 200


async def test_trigger_fails_at_once_on_permanent_errors(clock: FakeClock) -> None:
    fetch = mock.AsyncMock(side_effect=AuthenticationError("bad password"))
    with mock.patch.object(AnaplanHook, "aget_task", fetch):
        events = [e async for e in AnaplanTaskTrigger(conn_id="c", ref=REF, poll_interval=5).run()]
    assert [e.payload["status"] for e in events] == ["error"] and fetch.await_count == 1


async def test_trigger_deadline_still_applies_during_an_outage(clock: FakeClock) -> None:
    fetch = mock.AsyncMock(side_effect=NetworkError("refused"))
    trigger = AnaplanTaskTrigger(conn_id="c", ref=REF, poll_interval=5, deadline=clock.now + 30)
    with mock.patch.object(AnaplanHook, "aget_task", fetch):
        events = [e async for e in trigger.run()]
    assert [e.payload["status"] for e in events] == ["timeout"]


def test_outage_window_reaches_the_trigger() -> None:
    op = AnaplanRunImportOperator(task_id="t", import_id="112000000001", outage_window=42)
    _, kwargs = op.make_trigger(REF, None).serialize()
    assert kwargs["outage_window"] == 42.0
    with pytest.raises(ValueError, match="outage_window"):
        AnaplanRunImportOperator(task_id="t", import_id="112000000001", outage_window=-5)


def test_worker_poll_loop_rides_out_an_outage(clock: FakeClock) -> None:
    op = AnaplanRunImportOperator(task_id="t", import_id="112000000001", deferrable=False, durable=False)
    answers: list[Any] = [NetworkError("refused")] * 10 + [DONE]
    with mock.patch.object(type(op), "fetch", side_effect=answers) as fetch:
        result = op.poll_until_complete(REF, {})
    assert result["successful"] and fetch.call_count == 11


def test_worker_poll_loop_gives_up_after_the_window(clock: FakeClock) -> None:
    op = AnaplanRunImportOperator(task_id="t", import_id="112000000001", deferrable=False, outage_window=60)
    with (
        mock.patch.object(type(op), "fetch", side_effect=NetworkError("refused")),
        pytest.raises(NetworkError, match="kept failing"),
    ):
        op.poll_until_complete(REF, {})


# -- a deferrable retry reconnects instead of starting the remote work again --------------------


def _store(initial: dict[str, Any] | None) -> Any:
    data: dict[str, Any] = {} if initial is None else {"anaplan_task": initial}
    store = mock.MagicMock(spec_set=["get", "set"])
    store.get.side_effect = data.get
    store.set.side_effect = data.__setitem__
    return store


@pytest.mark.parametrize(
    ("earlier", "submits"),
    [({"taskState": "IN_PROGRESS"}, 0), (DONE, 0), ({"taskState": "CANCELLED"}, 1)],
    ids=["running", "succeeded", "failed"],
)
def test_deferrable_retry_reconnects_to_the_earlier_job(
    anaplan_conn: str, earlier: dict[str, Any], submits: int
) -> None:
    from airflow_provider_sapplan._compat import TaskDeferred

    op = AnaplanRunImportOperator(task_id="t", import_id="112000000001", deferrable=True)
    context = {"ti": mock.MagicMock(), "task_state_store": _store(REF)}
    new_ref = {**REF, "task_id": "T2"}
    answers = {"T1": earlier, "T2": {"taskState": "IN_PROGRESS"}}
    with (
        mock.patch.object(type(op), "submit", return_value=new_ref) as submit,
        mock.patch.object(type(op), "fetch", side_effect=lambda ref: answers[ref["task_id"]]),
    ):
        try:
            op.execute(context)
        except TaskDeferred as deferred:
            waited_on = deferred.trigger.ref
        else:
            waited_on = REF
    assert submit.call_count == submits
    assert waited_on["task_id"] == ("T2" if submits else "T1")


def test_deferrable_first_try_remembers_its_job(anaplan_conn: str) -> None:
    from airflow_provider_sapplan._compat import TaskDeferred

    op = AnaplanRunImportOperator(task_id="t", import_id="112000000001", deferrable=True)
    store = _store(None)
    with (
        mock.patch.object(type(op), "submit", return_value=REF),
        mock.patch.object(type(op), "fetch", return_value={"taskState": "IN_PROGRESS"}),
        pytest.raises(TaskDeferred),
    ):
        op.execute({"ti": mock.MagicMock(), "task_state_store": store})
    store.set.assert_called_once_with("anaplan_task", REF)
