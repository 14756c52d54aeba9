"""Deferrable wait on a run of an SAP BTP Job Scheduling schedule."""

from __future__ import annotations

from typing import Any

from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.trigger import RemoteJobTrigger
from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook
from airflow_provider_sapplan.jobs.sap_job_scheduling import raw_run_state, run_outcome


class SapJobSchedulingRunTrigger(RemoteJobTrigger):
    """Polls a schedule's run log until COMPLETED (or the deadline).

    ``ref`` holds ``job_id``, ``schedule_id`` and optionally ``run_id`` (without it, the schedule's
    first run is followed: a one-time ``time: now`` schedule has exactly one). The event carries the
    ids, ``raw_state`` (``runStatus/runState``) and the run log.
    """

    def make_hook(self) -> SapJobSchedulingHook:
        return SapJobSchedulingHook(self.conn_id)

    async def fetch(self, hook: SapJobSchedulingHook) -> dict[str, Any]:
        return await hook.acurrent_run(self.ref["job_id"], self.ref["schedule_id"], self.ref.get("run_id"))

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return run_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return raw_run_state(status)

    async def cancel(self, hook: SapJobSchedulingHook) -> None:
        # The service cannot abort a call it already made; deactivating the one-time schedule stops a
        # run that has not been triggered yet.
        await hook.aset_schedule_active(self.ref["job_id"], self.ref["schedule_id"], False)
