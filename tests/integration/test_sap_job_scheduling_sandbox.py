"""SAP Job Scheduling hook, operators and trigger against the real sandbox server: no mocks."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan._compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_sapplan.core.async_http import close_shared_session
from airflow_provider_sapplan.exceptions import RemoteJobFailedError
from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook
from airflow_provider_sapplan.operators.sap_job_scheduling import (
    SapJobSchedulingCreateJobOperator,
    SapJobSchedulingRunJobOperator,
)
from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.triggers.sap_job_scheduling import SapJobSchedulingRunTrigger

pytestmark = pytest.mark.integration

JOB = {"name": "integration_job", "action": "https://app.example.com/run", "httpMethod": "POST", "active": True}


def trigger_events(ref: dict[str, Any]) -> list[Any]:
    async def run() -> list[Any]:
        trigger = SapJobSchedulingRunTrigger(conn_id="sap_job_scheduling_default", ref=ref, poll_interval=5)
        events = [event async for event in trigger.run()]
        await close_shared_session()
        return events

    return asyncio.run(run())


def wait_completed(hook: SapJobSchedulingHook, ref: dict[str, Any]) -> dict[str, Any]:
    for _ in range(200):
        run = hook.current_run(ref["job_id"], ref["schedule_id"])
        if run.get("runStatus") == "COMPLETED":
            return run
        time.sleep(0.05)
    raise AssertionError("run did not complete")


@pytest.fixture
def job_id(live: SandboxServer) -> int:
    live.sap_job_scheduling.configure(scheduled_seconds=0.05, running_seconds=0.1)
    return SapJobSchedulingCreateJobOperator(task_id="ensure", job=JOB).execute({})


def test_create_job_twice_leaves_one_job(job_id: int) -> None:
    assert SapJobSchedulingCreateJobOperator(task_id="again", job=JOB).execute({}) == job_id
    names = [job["name"] for job in SapJobSchedulingHook().list_jobs()]
    assert names.count("integration_job") == 1


def test_run_now_success_through_the_trigger(live: SandboxServer, job_id: int) -> None:
    op = SapJobSchedulingRunJobOperator(task_id="run", job_id=job_id, data={"period": "2026-01"})
    ref = op.submit({})
    wait_completed(SapJobSchedulingHook(), ref)
    (event,) = trigger_events(ref)
    assert event.payload["status"] == "success" and event.payload["raw_state"] == "COMPLETED/SUCCESS"
    result = op.execute_complete({"ti": mock.MagicMock()}, event.payload)
    assert result["runState"] == "SUCCESS" and result["job_id"] == job_id
    schedule = SapJobSchedulingHook().get_schedule(job_id, ref["schedule_id"])
    assert schedule["active"] is False  # one-time schedules are deactivated after their run
    assert json.loads(schedule["data"]) == {"period": "2026-01"}  # the service echoes data as a JSON string
    assert live.stats.tasks_started[f"jss:{job_id}"] == 1


@pytest.mark.parametrize("outcome", ["error", "request_error"])
def test_failed_runs_raise_with_status_and_text(live: SandboxServer, job_id: int, outcome: str) -> None:
    live.sap_job_scheduling.configure(job_id, outcome=outcome)
    op = SapJobSchedulingRunJobOperator(task_id="run", job_id=job_id)
    ref = op.submit({})
    wait_completed(SapJobSchedulingHook(), ref)
    (event,) = trigger_events(ref)
    assert event.payload["status"] == "failed"
    with pytest.raises(RemoteJobFailedError, match=f"COMPLETED/{outcome.upper()} with HTTP status"):
        op.execute_complete({}, event.payload)


def test_async_run_completed_by_update_run_log(live: SandboxServer, job_id: int) -> None:
    live.sap_job_scheduling.configure(job_id, outcome="async")
    hook = SapJobSchedulingHook()
    ref = SapJobSchedulingRunJobOperator(task_id="run", job_id=job_id).submit({})
    for _ in range(100):
        run = hook.current_run(ref["job_id"], ref["schedule_id"])
        if run.get("runState") == "ACK_RECVD":
            break
        time.sleep(0.05)
    assert run["runState"] == "ACK_RECVD"
    hook.update_run_log(job_id, ref["schedule_id"], run["runId"], success=True, message="refreshed 42 rows")
    (event,) = trigger_events(ref)
    assert event.payload["status"] == "success" and event.payload["result"]["runText"] == "refreshed 42 rows"


def test_async_timeout_ends_unknown(live: SandboxServer, job_id: int) -> None:
    live.sap_job_scheduling.configure(job_id, outcome="async_timeout", async_timeout_seconds=0.2)
    ref = SapJobSchedulingRunJobOperator(task_id="run", job_id=job_id).submit({})
    assert wait_completed(SapJobSchedulingHook(), ref)["runState"] == "UNKNOWN"


def test_rate_limits_are_waited_out(live: SandboxServer, job_id: int) -> None:
    live.faults.add(
        method="GET", path_regex=r"/scheduler/jobs/\d+$", status=429, headers={"retry-after": "0.3"}, times=1
    )
    live.faults.add(
        method="GET", path_regex=r"/scheduler/jobs/\d+$", status=503, headers={"throttling": "300"}, times=1
    )
    started = time.monotonic()
    assert SapJobSchedulingHook().get_job(job_id)["name"] == "integration_job"
    assert time.monotonic() - started >= 0.6


def test_token_reused_and_renewed_after_expiry(live: SandboxServer, job_id: int) -> None:
    before = live.stats.auth_requests["sap_job_scheduling"]
    for _ in range(10):
        SapJobSchedulingHook().get_job(job_id)
    assert live.stats.auth_requests["sap_job_scheduling"] == before
    live.sap_job_scheduling.expire_tokens()
    SapJobSchedulingHook().get_job(job_id)
    assert live.stats.auth_requests["sap_job_scheduling"] == before + 1


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="durable execution needs Airflow 3.3+")
def test_durable_retry_reconnects_to_its_run(live: SandboxServer, job_id: int, monkeypatch: Any) -> None:
    real_sleep = time.sleep
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda s: real_sleep(0.05))
    store: dict[str, Any] = {}
    task_store = mock.MagicMock(spec_set=["get", "set"])
    task_store.get.side_effect = store.get
    task_store.set.side_effect = store.__setitem__
    context = {"ti": mock.MagicMock(stats_tags={}), "task_state_store": task_store}
    first = SapJobSchedulingRunJobOperator(task_id="run", job_id=job_id, deferrable=False)
    store["sap_job_scheduling_run"] = first.submit_job(context)  # the worker died after starting the run
    retry = SapJobSchedulingRunJobOperator(task_id="run", job_id=job_id, deferrable=False)
    assert retry.execute(context)["runState"] == "SUCCESS"
    assert live.stats.tasks_started[f"jss:{job_id}"] == 1


def test_hook_reads_the_schedule_list_as_a_bare_array(live: SandboxServer) -> None:
    """The sandbox can answer the schedule list without its envelope; the hook reads both."""
    hook = SapJobSchedulingHook()
    job_id, _ = hook.create_or_update_job(
        {
            "name": "bare-array-job",
            "action": "https://app.test/run",
            "httpMethod": "POST",
            "schedules": [{"active": False, "repeatInterval": "2 hours", "description": "two-hourly"}],
        }
    )
    wrapped = [s["scheduleId"] for s in hook.list_schedules(job_id)]
    live.sap_job_scheduling.bare_schedule_list = True
    try:
        assert [s["scheduleId"] for s in hook.list_schedules(job_id)] == wrapped and wrapped
    finally:
        live.sap_job_scheduling.bare_schedule_list = False
