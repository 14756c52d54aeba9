"""SAP Data Intelligence triggers and deferrable operators against the real sandbox server: no mocks."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan._compat import TaskDeferred
from airflow_provider_sapplan.core.async_http import close_shared_session
from airflow_provider_sapplan.exceptions import RemoteJobFailedError
from airflow_provider_sapplan.hooks.sap_data_intelligence import SapDataIntelligenceHook
from airflow_provider_sapplan.operators.sap_data_intelligence import (
    SapDataIntelligenceRunGraphOperator,
    SapDataIntelligenceStartFlowOperator,
)
from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.triggers.sap_data_intelligence import (
    SapDataIntelligenceChangeRequestTrigger,
    SapDataIntelligenceFlowTrigger,
    SapDataIntelligenceGraphTrigger,
)

pytestmark = pytest.mark.integration


def run_trigger(trigger: Any) -> dict[str, Any]:
    async def run() -> list[Any]:
        events = [event async for event in trigger.run()]
        await close_shared_session()
        return events

    (event,) = asyncio.run(run())
    return event.payload


@pytest.fixture(autouse=True)
def fast(live: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    live.sap_data_intelligence.configure(change_request_step=0.4, initial_load=1.0, suspend=0.4, graph_duration=1.0)
    monkeypatch.setattr("airflow_provider_sapplan.core.trigger.PollSchedule.next_interval", lambda self: 0.1)


def test_deferrable_start_flow_runs_both_phases_in_triggers(live: SandboxServer) -> None:
    # The initial load outlasts the first trigger's settle time, so the second phase is a wait too.
    live.sap_data_intelligence.configure(initial_load=30.0)
    context = {"ti": mock.MagicMock()}
    op = SapDataIntelligenceStartFlowOperator(
        task_id="start", flow_name="RF_SALES", target_state="delta_running", deferrable=True, timeout=60
    )
    with pytest.raises(TaskDeferred) as first:
        op.execute(context)
    assert isinstance(first.value.trigger, SapDataIntelligenceChangeRequestTrigger)
    payload = run_trigger(first.value.trigger)
    assert payload["status"] == "success" and payload["raw_state"] == "change_request:COMPLETED"
    with pytest.raises(TaskDeferred) as second:
        op.execute_complete(context, payload)
    assert isinstance(second.value.trigger, SapDataIntelligenceFlowTrigger)
    payload = run_trigger(second.value.trigger)
    assert payload["status"] == "success"
    result = op.execute_complete(context, payload)
    assert {t["name"]: t["status"] for t in result["tasks"]} == {
        "VBAK": "DELTA_RUNNING",
        "VBAP": "DELTA_RUNNING",
        "KNA1": "COMPLETED",
    }
    assert live.sap_data_intelligence.change_requests == 1


def test_someone_elses_request_fails_the_wait(live: SandboxServer) -> None:
    op = SapDataIntelligenceStartFlowOperator(task_id="start", flow_name="RF_MARA", deferrable=True, timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": mock.MagicMock()})
    ref = dict(deferred.value.trigger.ref)
    ref["acknowledged_at"] -= 3600  # our request is an hour old: the one DI shows now is someone else's
    ref["requested_at"] -= 3600
    payload = run_trigger(SapDataIntelligenceChangeRequestTrigger(conn_id="sap_data_intelligence_default", ref=ref))
    assert payload["status"] == "failed" and payload["raw_state"] == "change_request:REPLACED"
    with pytest.raises(RemoteJobFailedError, match="someone else"):
        op.execute_complete({"ti": mock.MagicMock()}, payload)


def test_flow_trigger_fails_on_injected_error(live: SandboxServer) -> None:
    live.sap_data_intelligence.inject_task_error("RF_MARA", "MARA", retries=2, message="Source table locked")
    SapDataIntelligenceHook().request_change("RF_MARA", "RUN_OR_RESUME_ALL_INACTIVE_TASKS")
    ref = {"flow": "RF_MARA", "phase": "tasks", "tasks": None, "target_state": "delta_running", "max_retrying": None}
    payload = run_trigger(SapDataIntelligenceFlowTrigger(conn_id="sap_data_intelligence_default", ref=ref))
    assert payload["status"] == "failed" and "MARA: Source table locked" in payload["result"]["message"]


def test_graph_trigger_and_stop_on_kill(live: SandboxServer) -> None:
    live.sap_data_intelligence.configure_graph("com.example.forever", outcome="running")
    op = SapDataIntelligenceRunGraphOperator(task_id="g", graph="com.example.forever", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": mock.MagicMock()})
    trigger = deferred.value.trigger
    assert isinstance(trigger, SapDataIntelligenceGraphTrigger)

    async def kill() -> None:
        await trigger.on_kill()
        await close_shared_session()

    asyncio.run(kill())
    assert live.sap_data_intelligence.graph_stops == 1
