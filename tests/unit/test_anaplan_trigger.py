"""AnaplanTaskTrigger: serialization, events per terminal state, polling, deadline, on_kill."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan._compat import TriggerEvent
from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
from airflow_provider_sapplan.triggers.anaplan import AnaplanTaskTrigger

REF = {
    "workspace_id": "ws",
    "model_id": "MODEL",
    "action_type": "imports",
    "action_id": "112000000001",
    "task_id": "T1",
}


def make_trigger(**kwargs: Any) -> AnaplanTaskTrigger:
    return AnaplanTaskTrigger(conn_id="anaplan_default", ref=REF, poll_interval=5, **kwargs)


def test_serialize_round_trip_is_plain_json() -> None:
    trigger = make_trigger(deadline=123.0, cancel_on_kill=False)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_sapplan.triggers.anaplan.AnaplanTaskTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs == {
        "conn_id": "anaplan_default",
        "ref": REF,
        "poll_interval": 5.0,
        "max_poll_interval": 60.0,
        "deadline": 123.0,
        "cancel_on_kill": False,
        "outage_window": 900.0,
        "checked_at": None,
    }
    rebuilt = AnaplanTaskTrigger(**kwargs)
    assert rebuilt.serialize() == trigger.serialize()


@pytest.mark.parametrize(
    ("task", "status"),
    [
        ({"taskState": "COMPLETE", "result": {"successful": True}}, "success"),
        ({"taskState": "COMPLETE", "result": {"successful": False, "failureDumpAvailable": True}}, "failed"),
        ({"taskState": "CANCELLED", "result": {"successful": False}}, "failed"),
    ],
    ids=["complete-success", "complete-failure", "cancelled"],
)
async def test_terminal_states_fire_one_event(task: dict[str, Any], status: str) -> None:
    with mock.patch.object(AnaplanHook, "aget_task", mock.AsyncMock(return_value=task)):
        events = [event async for event in make_trigger().run()]
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == status
    assert payload["task_id"] == "T1" and payload["raw_state"] == task["taskState"]
    assert payload["result"] == task


async def test_keeps_polling_while_running(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    monkeypatch.setattr("airflow_provider_sapplan.core.trigger.asyncio.sleep", fake_sleep)
    states = [{"taskState": s} for s in ("NOT_STARTED", "IN_PROGRESS", "CANCELLING", "SOMETHING_NEW")]
    states.append({"taskState": "COMPLETE", "result": {"successful": True}})
    with mock.patch.object(AnaplanHook, "aget_task", mock.AsyncMock(side_effect=states)):
        events = [event async for event in make_trigger().run()]
    assert [e.payload["status"] for e in events] == ["success"]
    assert sleeps == [5.0, 7.5, 11.25, 16.875]  # backs off from the first interval


async def test_still_running_task_does_not_fire() -> None:
    with mock.patch.object(AnaplanHook, "aget_task", mock.AsyncMock(return_value={"taskState": "IN_PROGRESS"})):
        task = asyncio.create_task(make_trigger().run().__anext__())
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()


async def test_deadline_fires_timeout_with_raw_state(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock.patch.object(AnaplanHook, "aget_task", mock.AsyncMock(return_value={"taskState": "IN_PROGRESS"})):
        events = [event async for event in make_trigger(deadline=time.time() - 1).run()]
    assert events == [
        TriggerEvent(
            {
                "status": "timeout",
                "ref": REF,
                **REF,
                "raw_state": "IN_PROGRESS",
                "message": "Still IN_PROGRESS when the wait's deadline passed.",
                "result": {"taskState": "IN_PROGRESS"},
            }
        )
    ]


async def test_deadline_is_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_now = [1000.0]
    monkeypatch.setattr("airflow_provider_sapplan.core.trigger.time.time", lambda: fake_now[0])

    async def fake_sleep(seconds: float) -> None:
        fake_now[0] += seconds

    monkeypatch.setattr("airflow_provider_sapplan.core.trigger.asyncio.sleep", fake_sleep)
    with mock.patch.object(AnaplanHook, "aget_task", mock.AsyncMock(return_value={"taskState": "IN_PROGRESS"})):
        events = [event async for event in make_trigger(deadline=1012.0).run()]
    assert events[0].payload["status"] == "timeout"
    assert fake_now[0] == 1012.0  # slept 5 + 7 (clipped to the deadline), no further


async def test_errors_become_one_error_event() -> None:
    with mock.patch.object(AnaplanHook, "aget_task", mock.AsyncMock(side_effect=RuntimeError("boom"))):
        events = [event async for event in make_trigger().run()]
    assert [e.payload["status"] for e in events] == ["error"]
    assert "boom" in events[0].payload["message"] and events[0].payload["task_id"] == "T1"


async def test_on_kill_cancels_when_asked() -> None:
    cancel = mock.AsyncMock(return_value={"taskState": "CANCELLING"})
    with mock.patch.object(AnaplanHook, "acancel_task", cancel):
        await make_trigger().on_kill()
        await make_trigger(cancel_on_kill=False).on_kill()
    cancel.assert_awaited_once_with("imports", "112000000001", "T1")


async def test_on_kill_never_raises() -> None:
    with mock.patch.object(AnaplanHook, "acancel_task", mock.AsyncMock(side_effect=RuntimeError("down"))):
        await make_trigger().on_kill()


async def test_first_poll_waits_an_interval_after_the_operators_own_look(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator (or sensor) looked just before deferring: the trigger's first look is an interval later

    (and never within DEFER_SETTLE_SECONDS). Besides sparing a request, this keeps a trigger from
    firing within seconds of the deferral, the window of Airflow 3.3's stale defer-exit race
    (apache/airflow#72716), which fails the resumed try.
    """
    calls: list[tuple[str, float]] = []

    async def fake_sleep(seconds: float) -> None:
        calls.append(("sleep", round(seconds)))

    async def fetch(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(("poll", 0))
        return {"taskState": "COMPLETE", "result": {"successful": True}}

    monkeypatch.setattr("airflow_provider_sapplan.core.trigger.asyncio.sleep", fake_sleep)
    looked = time.time()
    trigger = make_trigger(checked_at=looked)
    assert trigger.serialize()[1]["checked_at"] == looked  # a restarted triggerer knows it too
    with mock.patch.object(AnaplanHook, "aget_task", fetch):
        events = [event async for event in trigger.run()]
    assert events[0].payload["status"] == "success"
    assert calls == [("sleep", 10), ("poll", 0)]  # poll_interval 5, but DEFER_SETTLE_SECONDS is 10

    # Long after that look (a triggerer restarted later, say), the first poll is at once.
    calls.clear()
    with mock.patch.object(AnaplanHook, "aget_task", fetch):
        [event async for event in make_trigger(checked_at=looked - 60).run()]
    assert calls == [("poll", 0)]
