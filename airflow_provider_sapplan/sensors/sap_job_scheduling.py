"""Wait on a run of an SAP BTP Job Scheduling schedule started elsewhere (poke or deferrable)."""

from __future__ import annotations

from typing import Any

from airflow_provider_sapplan.core.sensor import RemoteJobSensor
from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook
from airflow_provider_sapplan.jobs.sap_job_scheduling import RunStatusMixin, run_summary
from airflow_provider_sapplan.triggers.sap_job_scheduling import SapJobSchedulingRunTrigger


class SapJobSchedulingRunSensor(RunStatusMixin, RemoteJobSensor):
    """Succeeds when the run completes with SUCCESS; fails on ERROR, REQUEST_ERROR, UNKNOWN or TIMEOUT.

    :param job_id: the job.
    :param schedule_id: the schedule whose run to wait on.
    :param run_id: a specific run; without it, the schedule's first run (one-time schedules have one).
    """

    trigger_class = SapJobSchedulingRunTrigger
    template_fields = ("job_id", "schedule_id", "run_id")

    def __init__(
        self,
        *,
        job_id: int | str,
        schedule_id: str,
        run_id: str | None = None,
        sap_job_scheduling_conn_id: str = SapJobSchedulingHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.schedule_id = schedule_id
        self.run_id = run_id
        self.sap_job_scheduling_conn_id = sap_job_scheduling_conn_id

    def job_ref(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"job_id": int(self.job_id), "schedule_id": str(self.schedule_id)}
        if self.run_id:
            ref["run_id"] = str(self.run_id)
        return ref

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        return {**ref, **run_summary(status)}
