"""Deferrable waits on SAP Data Intelligence: change requests, replication-flow tasks and graph runs."""

from __future__ import annotations

from typing import Any

from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.trigger import RemoteJobTrigger
from airflow_provider_sapplan.hooks.sap_data_intelligence import SapDataIntelligenceHook
from airflow_provider_sapplan.jobs.sap_data_intelligence import (
    RetryWatch,
    evaluate_change_request,
    evaluate_tasks,
    graph_outcome,
)


class _DataIntelligenceTrigger(RemoteJobTrigger):
    def make_hook(self) -> SapDataIntelligenceHook:
        return SapDataIntelligenceHook(self.conn_id)

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return Outcome(status.get("outcome", Outcome.RUNNING.value))

    def raw_state(self, status: dict[str, Any]) -> str:
        return f"{status.get('phase')}:{status.get('state')}"

    async def cancel(self, hook: SapDataIntelligenceHook) -> None:
        # A change request cannot be withdrawn and tasks are not stopped behind the user's back.
        return None


class SapDataIntelligenceChangeRequestTrigger(_DataIntelligenceTrigger):
    """Polls ``changerequeststatus`` until OUR request (``ref``: flow, request_type, requested_at,
    acknowledged_at, clock_skew) is COMPLETED or ERROR, or a newer request by someone else shows."""

    async def fetch(self, hook: SapDataIntelligenceHook) -> dict[str, Any]:
        return evaluate_change_request(await hook.achange_request_status(self.ref["flow"]), self.ref)


class SapDataIntelligenceFlowTrigger(_DataIntelligenceTrigger):
    """Polls the task monitors until the selected tasks reach ``ref["target_state"]``; a task in ERROR,
    or RETRYING for longer than ``ref["max_retrying"]`` seconds, ends the wait as failed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._watch = RetryWatch()

    async def fetch(self, hook: SapDataIntelligenceHook) -> dict[str, Any]:
        tasks = await hook.atask_monitors(self.ref["flow"])
        return evaluate_tasks(tasks, self.ref, local_tz=hook.timezone, watch=self._watch)


class SapDataIntelligenceGraphTrigger(_DataIntelligenceTrigger):
    """Polls a graph run (``ref["handle"]``) until completed or dead; ``on_kill`` stops it (3.3+)."""

    async def fetch(self, hook: SapDataIntelligenceHook) -> dict[str, Any]:
        return await hook.aget_graph(self.ref["handle"])

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return graph_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return str(status.get("status"))

    async def cancel(self, hook: SapDataIntelligenceHook) -> None:
        await hook.astop_graph(self.ref["handle"])
