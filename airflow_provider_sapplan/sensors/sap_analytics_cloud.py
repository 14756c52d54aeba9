"""Wait on SAP Analytics Cloud work started elsewhere: an import job, or the next run of a schedule."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_sapplan.core.sensor import RemoteJobSensor
from airflow_provider_sapplan.hooks.sap_analytics_cloud import SapAnalyticsCloudHook
from airflow_provider_sapplan.jobs.sap_analytics_cloud import (
    ImportJobStatusMixin,
    ScheduleRunStatusMixin,
    parse_time,
)
from airflow_provider_sapplan.triggers.sap_analytics_cloud import (
    SapAnalyticsCloudImportJobTrigger,
    SapAnalyticsCloudScheduleTrigger,
)


class SapAnalyticsCloudImportJobSensor(ImportJobStatusMixin, RemoteJobSensor):
    """Waits for a Data Import API job (``job_id``) to complete; a FAILED job (or failed rows) fails it.

    The sensor did not create the job: it never deletes it.

    :param allow_failed_rows: succeed although the job reports failed rows.
    :param invalid_rows_destination: where to keep every invalid row (JSON lines).
    """

    template_fields = ("job_id", "invalid_rows_destination")
    trigger_class = SapAnalyticsCloudImportJobTrigger

    def __init__(
        self,
        *,
        job_id: str,
        allow_failed_rows: bool = False,
        invalid_rows_destination: Any = None,
        sap_analytics_cloud_conn_id: str = SapAnalyticsCloudHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not job_id:
            raise ValueError("job_id is required: the import job's id (jobID in the create-job answer).")
        self.job_id = job_id
        self.allow_failed_rows = allow_failed_rows
        self.invalid_rows_destination = invalid_rows_destination
        self.sap_analytics_cloud_conn_id = sap_analytics_cloud_conn_id

    def job_ref(self) -> dict[str, Any]:
        return {"job_id": str(self.job_id), "owned": False}


class SapAnalyticsCloudScheduleSensor(ScheduleRunStatusMixin, RemoteJobSensor):
    """Waits for the next run of a data-management schedule that started after ``started_after``.

    :param schedule_id: the schedule (data import) id, as ``getScheduleLogsByModel`` shows it.
    :param model_name: the model as the service names it, e.g. ``t.G:ZEPPART_001``.
    :param started_after: a datetime, ISO-8601 text or epoch seconds; default: the data interval start.
    :param clock_skew: seconds of clock difference allowed between this machine and SAC.
    :param fail_on_rejected_rows: fail on a run that finished with rejected rows (code 2).
    :param rejections_destination: where to keep the rejected rows' CSV.
    """

    template_fields = ("schedule_id", "model_name", "started_after", "rejections_destination")
    trigger_class = SapAnalyticsCloudScheduleTrigger

    def __init__(
        self,
        *,
        schedule_id: str,
        model_name: str,
        started_after: datetime | str | float | None = None,
        clock_skew: float | timedelta = 120.0,
        fail_on_rejected_rows: bool = True,
        rejections_destination: Any = None,
        sap_analytics_cloud_conn_id: str = SapAnalyticsCloudHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not schedule_id or not model_name:
            raise ValueError("schedule_id and model_name are required (getScheduleLogsByModel lists them).")
        self.schedule_id = schedule_id
        self.model_name = model_name
        self.started_after = started_after
        self.clock_skew = clock_skew.total_seconds() if isinstance(clock_skew, timedelta) else float(clock_skew)
        if self.clock_skew < 0:
            raise ValueError("clock_skew must not be negative.")
        if isinstance(started_after, str) and "{{" not in started_after and parse_time(started_after) is None:
            raise ValueError(f"started_after {started_after!r} is not ISO-8601 text (e.g. 2026-03-01T06:00:00Z).")
        self.fail_on_rejected_rows = fail_on_rejected_rows
        self.rejections_destination = rejections_destination
        self.sap_analytics_cloud_conn_id = sap_analytics_cloud_conn_id
        self._after: float | None = None

    def _resolve_start(self, context: Any) -> float:
        value = self.started_after
        if value in (None, ""):
            get = context.get if hasattr(context, "get") else lambda _key: None
            dag_run = get("dag_run")
            value = get("data_interval_start") or get("logical_date") or getattr(dag_run, "start_date", None)
        if value in (None, ""):
            return time.time()
        if isinstance(value, datetime):
            return value.timestamp()
        parsed = parse_time(value) if not isinstance(value, (int, float)) else float(value)
        if parsed is None:
            raise ValueError(f"started_after {value!r} is not a datetime, ISO-8601 text or epoch seconds.")
        return parsed

    def execute(self, context: Any) -> Any:
        self._after = self._resolve_start(context)
        self.hook.require_tenant()
        return super().execute(context)

    def job_ref(self) -> dict[str, Any]:
        return {
            "schedule_id": str(self.schedule_id),
            "model_name": str(self.model_name),
            "started_after": self._after if self._after is not None else time.time(),
            "skew": self.clock_skew,
        }
