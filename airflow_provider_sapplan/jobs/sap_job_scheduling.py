"""What an SAP Job Scheduling run means: its states, outcome, summary and failure error.

Shared by the Job Scheduling operators, sensor and trigger (which must not import one another), and
built on :mod:`airflow_provider_sapplan.hooks.sap_job_scheduling` and :mod:`airflow_provider_sapplan.core`
only. The operator and sensor classes set ``trigger_class`` themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from airflow_provider_sapplan.core.remote_job import RemoteJobMixin
from airflow_provider_sapplan.core.status import Outcome, StatusTable
from airflow_provider_sapplan.exceptions import RemoteJobFailedError
from airflow_provider_sapplan.hooks.sap_job_scheduling import PLATFORM, SapJobSchedulingHook, parse_timestamp

RUN_STATES = StatusTable(
    PLATFORM,
    running=("SCHEDULED", "TRIGGERED", "ACK_RECVD", "ACK_NOT_RECVD"),
    succeeded=("SUCCESS",),
    failed=("ERROR", "REQUEST_ERROR", "UNKNOWN", "TIMEOUT"),
)


def run_outcome(run: Mapping[str, Any]) -> Outcome:
    """SUCCESS only once COMPLETED; COMPLETED with ERROR, REQUEST_ERROR, UNKNOWN or TIMEOUT fails."""
    if str(run.get("runStatus", "")).upper() != "COMPLETED":
        return Outcome.RUNNING
    return RUN_STATES.outcome(run.get("runState"))


def raw_run_state(run: Mapping[str, Any]) -> str:
    return f"{run.get('runStatus')}/{run.get('runState')}"


def run_summary(run: Mapping[str, Any]) -> dict[str, Any]:
    """A run log with its timestamps normalised to ISO-8601 UTC (the service mixes two formats)."""
    summary = dict(run)
    for key in ("scheduleTimestamp", "executionTimestamp", "completionTimestamp"):
        parsed = parse_timestamp(run.get(key))
        summary[key] = parsed.isoformat() if parsed else run.get(key)
    return summary


def raise_run_failure(ref: dict[str, Any], run: dict[str, Any]) -> NoReturn:
    raise RemoteJobFailedError(
        f"{PLATFORM} job {ref['job_id']} run {run.get('runId')} (schedule {ref['schedule_id']}) ended "
        f"{raw_run_state(run)} with HTTP status {run.get('httpStatus')}: {run.get('runText') or 'no run text'}.",
        platform=PLATFORM,
        details={**ref, "run": run},
    )


class JobSchedulingHookMixin:
    """One hook per task run for Job Scheduling operators and sensors: the connection is read once."""

    sap_job_scheduling_conn_id: str

    @property
    def hook(self) -> SapJobSchedulingHook:
        hook = self.__dict__.get("_hook")
        if hook is None:
            hook = self.__dict__["_hook"] = SapJobSchedulingHook(self.sap_job_scheduling_conn_id)
        return hook


class RunStatusMixin(JobSchedulingHookMixin, RemoteJobMixin):
    """How a run is read and judged, shared by the run operator and the run sensor."""

    conn_id_field = "sap_job_scheduling_conn_id"

    def fetch(self, ref: dict[str, Any]) -> dict[str, Any]:
        return self.hook.current_run(ref["job_id"], ref["schedule_id"], ref.get("run_id"))

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return run_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return raw_run_state(status)

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        raise_run_failure(ref, status)
