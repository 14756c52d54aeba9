"""SAP BTP Job Scheduling operators: run a job now and wait, create/update, delete, (de)activate."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow_provider_sapplan._compat import BaseOperator, BaseOperatorLink
from airflow_provider_sapplan.core.links import XComUrlLink
from airflow_provider_sapplan.core.operator import RemoteJobOperator
from airflow_provider_sapplan.core.validation import (
    ArgumentError,
    CheckedArguments,
    as_bool,
    as_int_id,
    as_json_object,
    is_template,
)
from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook
from airflow_provider_sapplan.jobs.sap_job_scheduling import JobSchedulingHookMixin, RunStatusMixin, run_summary
from airflow_provider_sapplan.triggers.sap_job_scheduling import SapJobSchedulingRunTrigger

JOB_URL_XCOM_KEY = "sap_job_scheduling_job_url"


class SapJobSchedulingJobLink(XComUrlLink):
    """Opens the job in the service dashboard (when the connection names the dashboard)."""

    name = "SAP Job Scheduling job"
    xcom_key = JOB_URL_XCOM_KEY


def _one_job(job_id: Any, job_name: Any) -> None:
    if (job_id in (None, "")) == (job_name in (None, "")):
        raise ArgumentError("Give exactly one of job_id or job_name.")


class _JobOperator(CheckedArguments, JobSchedulingHookMixin, BaseOperator):
    """Shared parameters: the connection and the job (by id or by name)."""

    operator_extra_links: ClassVar[tuple[BaseOperatorLink, ...]] = (SapJobSchedulingJobLink(),)

    def __init__(
        self,
        *,
        job_id: int | str | None = None,
        job_name: str | None = None,
        sap_job_scheduling_conn_id: str = SapJobSchedulingHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _one_job(job_id, job_name)
        self.job_id = job_id
        self.job_name = job_name
        self.sap_job_scheduling_conn_id = sap_job_scheduling_conn_id
        self._check_job(final=False)

    def check_rendered_arguments(self) -> None:
        super().check_rendered_arguments()
        self._check_job(final=True)

    def _check_job(self, *, final: bool) -> None:
        if self.job_id not in (None, "") and (final or not is_template(self.job_id)):
            self.job_id = as_int_id(self.job_id, "job_id")
        if self.job_name not in (None, "") and not isinstance(self.job_name, str):
            raise ArgumentError(f"job_name must be a string, got {type(self.job_name).__name__} {self.job_name!r}.")

    def _push_job_url(self, context: Any, job_id: int) -> None:
        push_job_url(context, self.hook, job_id)
        self._link_pushed = True


def push_job_url(context: Any, hook: SapJobSchedulingHook, job_id: int) -> None:
    """Push the dashboard link ("" when the connection names no dashboard, so the link renders empty)."""
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is not None:
        ti.xcom_push(key=JOB_URL_XCOM_KEY, value=hook.job_url(job_id) or "")


class SapJobSchedulingRunJobOperator(RunStatusMixin, RemoteJobOperator, _JobOperator):
    """Run a job now (a one-time ``time: "now"`` schedule) and wait for its run.

    :param data: JSON payload handed to the job's action with this run.
    Waiting (``wait_for_completion``, ``deferrable``, ``poll_interval``, ``timeout``, ``cancel_on_kill``,
    ``durable``) works as for every run operator of this provider. The return value is the run log
    with ``job_id`` and ``schedule_id``; a failed run raises with its ``httpStatus`` and ``runText``.
    Killing the task deactivates the one-time schedule (the service cannot abort a call in flight).
    """

    template_fields = ("job_id", "job_name", "data")
    template_fields_renderers: ClassVar[dict[str, str]] = {"data": "json"}
    trigger_class = SapJobSchedulingRunTrigger
    xcom_ref_key = "sap_job_scheduling_run"
    external_id_key = "sap_job_scheduling_run"

    def __init__(self, *, data: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = data
        if not is_template(data):
            self.data = as_json_object(data, "data")

    def check_rendered_arguments(self) -> None:
        super().check_rendered_arguments()
        self.data = as_json_object(self.data, "data")  # a rendered JSON string becomes the dict it holds

    def submit(self, context: Any) -> dict[str, Any]:
        job_id = self.hook.resolve_job_id(self.job_id, self.job_name)
        self._push_job_url(context, job_id)
        description = "Airflow run"
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None and isinstance(getattr(ti, "dag_id", None), str):
            description = f"Airflow {ti.dag_id}.{ti.task_id} {ti.run_id} try {ti.try_number}"
        schedule = self.hook.run_now(job_id, data=self.data, description=description)
        return {"job_id": job_id, "schedule_id": str(schedule["scheduleId"])}

    def cancel(self, ref: dict[str, Any]) -> None:
        self.hook.update_schedule(ref["job_id"], ref["schedule_id"], {"active": False})

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        self.log.info("Job %s run %s succeeded: %s", ref["job_id"], status.get("runId"), status.get("runText"))
        return {**ref, **run_summary(status)}


class SapJobSchedulingCreateJobOperator(CheckedArguments, BaseOperator):
    """Create a job, or update the one with the same name (running it twice leaves one job).

    :param job: the job definition (``name``, ``action``, ``httpMethod``, optional ``schedules``...),
        validated before sending. Returns the job id.
    """

    template_fields = ("job",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"job": "json"}
    operator_extra_links: ClassVar[tuple[BaseOperatorLink, ...]] = (SapJobSchedulingJobLink(),)

    def __init__(
        self,
        *,
        job: dict[str, Any],
        sap_job_scheduling_conn_id: str = SapJobSchedulingHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.sap_job_scheduling_conn_id = sap_job_scheduling_conn_id
        if not is_template(job):
            self.check_rendered_arguments()

    def check_rendered_arguments(self) -> None:
        super().check_rendered_arguments()
        job = as_json_object(self.job, "job")
        if job is None:
            raise ArgumentError("job must be the job definition dict (name, action, httpMethod, ...), got None.")
        self.job = job

    def execute(self, context: Any) -> int:
        self.run_argument_checks()
        hook = SapJobSchedulingHook(self.sap_job_scheduling_conn_id)
        job_id, created = hook.create_or_update_job(self.job)
        self.log.info("%s job %r (id %s).", "Created" if created else "Updated", self.job.get("name"), job_id)
        push_job_url(context, hook, job_id)
        return job_id


class SapJobSchedulingDeleteJobOperator(_JobOperator):
    """Delete a job (``job_id`` or ``job_name``); a job that is already gone is not an error."""

    template_fields = ("job_id", "job_name")

    def execute(self, context: Any) -> bool:
        self.run_argument_checks()
        if self.job_id in (None, ""):
            job = self.hook.find_job_by_name(str(self.job_name))
            if job is None:
                self.log.info("No job named %r; nothing to delete.", self.job_name)
                return False
            job_id = int(job.get("_id", job.get("jobId")))
        else:
            job_id = int(self.job_id)  # type: ignore[arg-type]
        deleted = self.hook.delete_job(job_id)
        self.log.info("Job %s %s.", job_id, "deleted" if deleted else "did not exist")
        return deleted


class SapJobSchedulingSetActiveOperator(_JobOperator):
    """Activate (``active=True``) or deactivate every schedule of a job."""

    template_fields = ("job_id", "job_name")

    def __init__(self, *, active: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.active = as_bool(active, "active")  # "false" would activate every schedule

    def execute(self, context: Any) -> int:
        self.run_argument_checks()
        job_id = self.hook.resolve_job_id(self.job_id, self.job_name)
        self._push_job_url(context, job_id)
        self.hook.set_schedules_active(job_id, self.active)
        self.log.info("%s all schedules of job %s.", "Activated" if self.active else "Deactivated", job_id)
        return job_id
