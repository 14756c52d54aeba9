"""Deferrable waits on SAP Analytics Cloud: import jobs, Multi Action executions, data-management runs."""

from __future__ import annotations

from typing import Any

from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.trigger import RemoteJobTrigger
from airflow_provider_sapplan.hooks.sap_analytics_cloud import SapAnalyticsCloudHook
from airflow_provider_sapplan.jobs.sap_analytics_cloud import (
    MULTI_ACTION_STATES,
    REFRESH_CODES,
    import_outcome,
    import_raw_state,
    multi_action_raw_state,
    schedule_run_status,
)


class _SacTrigger(RemoteJobTrigger):
    def make_hook(self) -> SapAnalyticsCloudHook:
        return SapAnalyticsCloudHook(self.conn_id)


class SapAnalyticsCloudImportJobTrigger(_SacTrigger):
    """Polls ``GET /api/v1/dataimport/jobs/{job_id}/status`` until COMPLETED or FAILED.

    ``ref`` holds ``job_id``, ``model_id`` and ``owned`` (the job was created by the task: on kill it
    is deleted, so it does not count against the active-job limits).
    """

    async def fetch(self, hook: SapAnalyticsCloudHook) -> dict[str, Any]:
        return await hook.aimport_job_status(self.ref["job_id"])

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return import_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return import_raw_state(status)

    async def cancel(self, hook: SapAnalyticsCloudHook) -> None:
        if self.ref.get("owned"):
            await hook.adelete_import_job(self.ref["job_id"])


class SapAnalyticsCloudMultiActionTrigger(_SacTrigger):
    """Polls a Multi Action execution until success, warning, error or failed (any case)."""

    async def fetch(self, hook: SapAnalyticsCloudHook) -> dict[str, Any]:
        return await hook.amulti_action_execution(self.ref["multi_action_id"], self.ref["execution_id"])

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return MULTI_ACTION_STATES.outcome(multi_action_raw_state(status))

    def raw_state(self, status: dict[str, Any]) -> str:
        return multi_action_raw_state(status)

    async def cancel(self, hook: SapAnalyticsCloudHook) -> None:
        # SAC offers no call that stops a Multi Action execution
        self.log.info("SAP Analytics Cloud cannot stop a Multi Action execution; %s keeps running.", self.ref)


class SapAnalyticsCloudScheduleTrigger(_SacTrigger):
    """Polls a model's schedule logs until the run ``ref`` waits for ends (codes 1, 2, 3, 4).

    ``ref``: ``schedule_id``, ``model_name``, ``started_after`` (epoch seconds), ``skew`` (seconds of
    clock skew allowed) and optionally ``log_deadline`` (epoch seconds after which "no log yet" fails).
    """

    async def fetch(self, hook: SapAnalyticsCloudHook) -> dict[str, Any]:
        return schedule_run_status(await hook.aschedule_logs(self.ref["model_name"]), self.ref)

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return REFRESH_CODES.outcome(status.get("state"))

    def raw_state(self, status: dict[str, Any]) -> str:
        return str(status.get("state"))

    async def cancel(self, hook: SapAnalyticsCloudHook) -> None:
        # the data-management service has no documented cancel call
        self.log.info("SAP Analytics Cloud cannot stop a data-management run; %s keeps running.", self.ref)
