"""RemoteJobTrigger.on_kill: cancel the remote job only when a user ended the deferred task.

Airflow 3.3 calls a trigger's ``on_kill`` when its trigger row disappears while the triggerer runs
it: a user marked the task failed/success or cleared it, but also when another triggerer took the
trigger over. The base trigger asks the task instance's state first and cancels only when the task
is no longer deferred; a triggerer restart (a plain CancelledError) never cancels anything.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan import _compat
from airflow_provider_sapplan.core import trigger as trigger_module
from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.trigger import RemoteJobTrigger

TI = SimpleNamespace(dag_id="d", run_id="r1", task_id="wait", map_index=-1)


class FakeTrigger(RemoteJobTrigger):
    """A trigger whose job never ends; ``cancelled`` counts cancel calls."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(conn_id="c", ref={"job": "J1"}, poll_interval=5, **kwargs)
        self.cancelled = 0
        self.polls = 0

    def make_hook(self) -> Any:
        return SimpleNamespace()

    async def fetch(self, hook: Any) -> dict[str, Any]:
        self.polls += 1
        return {"state": "RUNNING"}

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return Outcome.RUNNING

    def raw_state(self, status: dict[str, Any]) -> str:
        return status["state"]

    async def cancel(self, hook: Any) -> None:
        self.cancelled += 1


def with_ti(trigger: FakeTrigger, ti: Any = TI) -> FakeTrigger:
    trigger.task_instance = ti
    return trigger


@pytest.mark.parametrize("state", ["failed", "success", "no_status", "up_for_retry", "scheduled"])
async def test_cancels_when_the_task_is_no_longer_deferred(state: str) -> None:
    trigger = with_ti(FakeTrigger())
    with mock.patch.object(trigger_module, "task_instance_state", mock.AsyncMock(return_value=state)) as ask:
        await trigger.on_kill()
    ask.assert_awaited_once_with(TI)
    assert trigger.cancelled == 1


async def test_leaves_the_job_running_while_the_task_is_still_deferred(caplog: pytest.LogCaptureFixture) -> None:
    # Another triggerer took the trigger over: the task still waits for this very job.
    trigger = with_ti(FakeTrigger())
    with mock.patch.object(trigger_module, "task_instance_state", mock.AsyncMock(return_value="deferred")):
        await trigger.on_kill()
    assert trigger.cancelled == 0
    assert "still deferred" in caplog.text and "leaving {'job': 'J1'} running" in caplog.text


@pytest.mark.parametrize("answer", [None, RuntimeError("api down")])
async def test_leaves_the_job_running_when_the_state_is_unknown(answer: Any) -> None:
    trigger = with_ti(FakeTrigger())
    ask = mock.AsyncMock(side_effect=answer) if isinstance(answer, Exception) else mock.AsyncMock(return_value=answer)
    with mock.patch.object(trigger_module, "task_instance_state", ask):
        await trigger.on_kill()  # never raises
    assert trigger.cancelled == 0


async def test_cancel_on_kill_false_asks_nothing_and_cancels_nothing() -> None:
    trigger = with_ti(FakeTrigger(cancel_on_kill=False))
    with mock.patch.object(trigger_module, "task_instance_state", mock.AsyncMock()) as ask:
        await trigger.on_kill()
    ask.assert_not_awaited()
    assert trigger.cancelled == 0


async def test_without_a_task_instance_the_direct_caller_gets_the_cancel() -> None:
    trigger = FakeTrigger()
    with mock.patch.object(trigger_module, "task_instance_state", mock.AsyncMock()) as ask:
        await trigger.on_kill()
    ask.assert_not_awaited()
    assert trigger.cancelled == 1


async def test_a_triggerer_restart_never_cancels() -> None:
    # Shutdown and restart cancel the trigger's task without calling on_kill: the wait just stops,
    # and the restarted triggerer resumes it from the serialized kwargs.
    trigger = with_ti(FakeTrigger())
    task = asyncio.ensure_future(anext(trigger.run()))
    while trigger.polls == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert trigger.cancelled == 0
    assert trigger.serialize()[1]["ref"] == {"job": "J1"}


@pytest.mark.skipif(not _compat.AIRFLOW_V_3_0_PLUS, reason="Airflow 2.11 never calls on_kill on triggers")
@pytest.mark.parametrize(
    ("ti", "answer", "expected", "asked_map_index"),
    [
        (TI, {"r1": {"wait": "failed"}}, "failed", None),
        (TI, {"r1": {"wait": None}}, "no_status", None),
        (TI, {"r1": {"other": "failed"}}, None, None),
        (TI, {}, None, None),
        (
            SimpleNamespace(dag_id="d", run_id="r1", task_id="wait", map_index=3),
            {"r1": {"wait_3": "deferred"}},
            "deferred",
            3,
        ),
    ],
)
async def test_task_instance_state_reads_the_supervisor(
    ti: Any, answer: dict[str, Any], expected: str | None, asked_map_index: int | None
) -> None:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    with mock.patch.object(RuntimeTaskInstance, "get_task_states", return_value=answer) as get:
        assert await _compat.task_instance_state(ti) == expected
    get.assert_called_once_with(dag_id="d", task_ids=["wait"], run_ids=["r1"], map_index=asked_map_index)


@pytest.mark.skipif(_compat.AIRFLOW_V_3_0_PLUS, reason="the 2.11 answer")
async def test_task_instance_state_is_unknown_on_airflow_2() -> None:
    assert await _compat.task_instance_state(TI) is None


async def test_a_cancel_in_flight_survives_the_triggerers_repeated_cancels() -> None:
    # Airflow 3.3.2 cancels a trigger's task again on every loop until it finished, interrupting on_kill.
    release = asyncio.Event()

    class SlowCancel(FakeTrigger):
        async def cancel(self, hook: Any) -> None:
            await release.wait()
            self.cancelled += 1

    trigger = with_ti(SlowCancel())
    with mock.patch.object(trigger_module, "task_instance_state", mock.AsyncMock(return_value="failed")):
        for _ in range(3):  # on_kill interrupted three times while its cancel call is in flight
            kill = asyncio.ensure_future(trigger.on_kill())
            await asyncio.sleep(0.01)
            kill.cancel()
            with pytest.raises(asyncio.CancelledError):
                await kill
        assert trigger.cancelled == 0 and len(trigger_module._KILLS) == 3
        release.set()
        while trigger_module._KILLS:
            await asyncio.sleep(0.01)
    assert trigger.cancelled == 3  # each cancel went through (the platforms' cancels are idempotent)


async def test_a_cancel_that_hangs_is_given_up_after_kill_timeout(caplog: pytest.LogCaptureFixture) -> None:
    class Hangs(FakeTrigger):
        async def cancel(self, hook: Any) -> None:
            await asyncio.Event().wait()

    trigger = with_ti(Hangs())
    with (
        mock.patch.object(trigger_module, "task_instance_state", mock.AsyncMock(return_value="failed")),
        mock.patch.object(trigger_module, "KILL_TIMEOUT", 0.05),
    ):
        await trigger.on_kill()
    assert "Could not cancel {'job': 'J1'} on kill" in caplog.text and not trigger_module._KILLS
