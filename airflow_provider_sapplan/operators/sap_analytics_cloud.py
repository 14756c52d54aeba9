"""SAP Analytics Cloud operators: import data (Data Import API), run a Multi Action, run a data-management schedule.

Each starts one piece of remote work, pushes its reference to XCom, and waits (in the worker, or
deferred to the triggerer) through the provider's shared start-and-wait base.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, ClassVar

from airflow_provider_sapplan._compat import BaseOperatorLink
from airflow_provider_sapplan.core.links import XComUrlLink
from airflow_provider_sapplan.core.operator import RemoteJobOperator
from airflow_provider_sapplan.core.patience import call_until_accepted, wait_until
from airflow_provider_sapplan.core.reconcile import redo_disposable
from airflow_provider_sapplan.exceptions import ResourceBusyError
from airflow_provider_sapplan.hooks.sap_analytics_cloud import (
    IMPORT_METHODS,
    IMPORT_TYPES,
    PLATFORM,
    SapAnalyticsCloudHook,
)
from airflow_provider_sapplan.jobs.sap_analytics_cloud import (
    ImportJobStatusMixin,
    MultiActionStatusMixin,
    ScheduleRunStatusMixin,
    check_columns,
    csv_header,
    import_counts,
    in_flight,
    parameter_values,
    parse_time,
    refresh_logs,
    row_batches,
)
from airflow_provider_sapplan.triggers.sap_analytics_cloud import (
    SapAnalyticsCloudImportJobTrigger,
    SapAnalyticsCloudMultiActionTrigger,
    SapAnalyticsCloudScheduleTrigger,
)

TENANT_URL_XCOM_KEY = "sap_analytics_cloud_url"
JOB_SETTINGS_KEYS = ("importMethod", "dimensionScope", "executeWithFailedRows")
MULTI_ACTION_ID = re.compile(r"^[^:/\s]+:[^:/\s]+$")


class SapAnalyticsCloudTenantLink(XComUrlLink):
    """Opens the SAC tenant the task worked on."""

    name = "SAP Analytics Cloud"
    xcom_key = TENANT_URL_XCOM_KEY


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


class _SacOperator(RemoteJobOperator):
    """Shared: the connection, the tenant link, and argument checks run at construction and after rendering."""

    operator_extra_links: ClassVar[tuple[BaseOperatorLink, ...]] = (SapAnalyticsCloudTenantLink(),)

    def __init__(
        self, *, sap_analytics_cloud_conn_id: str = SapAnalyticsCloudHook.default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.sap_analytics_cloud_conn_id = sap_analytics_cloud_conn_id

    def check_arguments(self, rendered: bool) -> None:
        """Raise ValueError naming the fix; ``rendered`` is False at construction (templates skipped)."""

    def extra_xcom(self, ref: dict[str, Any]) -> dict[str, Any]:
        url = self.hook.tenant_url  # type: ignore[attr-defined]
        return {TENANT_URL_XCOM_KEY: f"{url}/sap/fpa/ui/app.html" if url else ""}


class SapAnalyticsCloudImportDataOperator(ImportJobStatusMixin, _SacOperator):
    """Import rows into a model through the official Data Import API, and wait for the job.

    Steps: the source's columns are checked against the model's metadata (before any row is sent),
    a job is created (1002/1007 "too many active jobs" are waited out within ``timeout``), rows are
    pushed in batches of ``batch_size`` streamed from the source, the job is validated (failed rows
    fail the task before anything is written, unless ``allow_failed_rows``), run, and waited on.
    A job the task created is deleted when the task fails or is killed.

    :param model_id: the model's id (``GET /api/v1/dataimport/models`` lists them).
    :param import_type: ``factData`` (default), ``masterData``, ``masterFactData`` or ``privateFactData``.
    :param source: a CSV file (local path or object-storage URL) with a header row.
    :param rows: the rows as a list of dicts (instead of ``source``).
    :param mapping: ``{"<model column>": "<source column>"}`` for columns named differently.
    :param default_values: ``{"<model column>": value}`` for columns the source lacks.
    :param job_settings: ``importMethod`` (Update, Append, CleanAndReplace, DeleteAndUpsert,
        DropAndInsert), ``dimensionScope`` and ``executeWithFailedRows``.
    :param batch_size: rows per push request (memory holds one batch at a time).
    :param allow_failed_rows: write the valid rows and succeed although some rows failed.
    :param invalid_rows_destination: where to keep every invalid row (JSON lines), local or object storage.
    """

    template_fields = (
        "model_id",
        "import_type",
        "source",
        "rows",
        "mapping",
        "default_values",
        "job_settings",
        "invalid_rows_destination",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "mapping": "json",
        "default_values": "json",
        "job_settings": "json",
    }
    trigger_class = SapAnalyticsCloudImportJobTrigger
    xcom_ref_key = "sap_analytics_cloud_import_job"
    external_id_key = "sap_analytics_cloud_import_job"

    def __init__(
        self,
        *,
        model_id: str,
        import_type: str = "factData",
        source: Any = None,
        rows: Any = None,
        mapping: dict[str, str] | None = None,
        default_values: dict[str, Any] | None = None,
        job_settings: dict[str, Any] | None = None,
        batch_size: int = 10_000,
        allow_failed_rows: bool = False,
        invalid_rows_destination: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_id = model_id
        self.import_type = import_type
        self.source = source
        self.rows = rows
        self.mapping = mapping
        self.default_values = default_values
        self.job_settings = job_settings
        self.batch_size = batch_size
        self.allow_failed_rows = allow_failed_rows
        self.invalid_rows_destination = invalid_rows_destination
        self.check_arguments(rendered=False)

    def check_arguments(self, rendered: bool) -> None:
        def ready(value: Any) -> bool:
            return rendered or not _templated(value)

        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 100_000:
            raise ValueError(f"batch_size must be a whole number from 1 to 100000, got {self.batch_size!r}.")
        if ready(self.model_id) and (not isinstance(self.model_id, str) or not self.model_id.strip()):
            raise ValueError("model_id is required: the model's id from GET /api/v1/dataimport/models.")
        if ready(self.import_type) and self.import_type not in IMPORT_TYPES:
            raise ValueError(f"import_type {self.import_type!r} is not one of {', '.join(IMPORT_TYPES)}.")
        if (self.source in (None, "")) == (self.rows is None):
            raise ValueError("Give exactly one of source (a CSV path) or rows (a list of dicts).")
        if (
            self.rows is not None
            and ready(self.rows)
            and (not isinstance(self.rows, list) or not all(isinstance(r, Mapping) for r in self.rows))
        ):
            raise ValueError("rows must be a list of dicts, one per row, keyed by column name.")
        for name in ("mapping", "default_values", "job_settings"):
            value = getattr(self, name)
            if value is not None and ready(value) and not isinstance(value, Mapping):
                raise ValueError(f"{name} must be a dict, got {type(value).__name__}.")
        if isinstance(self.mapping, Mapping) and not all(isinstance(v, str) for v in self.mapping.values()):
            raise ValueError("mapping maps model column -> source column name; every value must be a string.")
        if isinstance(self.job_settings, Mapping):
            unknown = sorted(set(self.job_settings) - set(JOB_SETTINGS_KEYS))
            if unknown:
                raise ValueError(f"job_settings has unknown key(s) {unknown}; known: {', '.join(JOB_SETTINGS_KEYS)}.")
            method = self.job_settings.get("importMethod")
            if method is not None and ready(method) and method not in IMPORT_METHODS:
                raise ValueError(f"job_settings importMethod {method!r} is not one of {', '.join(IMPORT_METHODS)}.")

    def _columns(self) -> list[str]:
        if self.rows is not None:
            seen: dict[str, None] = {}
            for row in self.rows:
                seen.update(dict.fromkeys(map(str, row)))
            return list(seen)
        return csv_header(self.source)

    def _job_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.mapping:
            body["Mapping"] = dict(self.mapping)
        if self.default_values:
            body["DefaultValues"] = dict(self.default_values)
        if self.job_settings:
            body["JobSettings"] = dict(self.job_settings)
        return body

    def submit(self, context: Any) -> dict[str, Any]:
        self.check_arguments(rendered=True)
        columns = self._columns()
        check_columns(columns, self.mapping, self.hook.model_columns(self.model_id, self.import_type), self.model_id)
        # Staging writes nothing until the run: when an answer is lost while staging, the job is
        # deleted and the rows are staged again in a new one (not a failed try).
        ref, validation = redo_disposable(self._stage, what=f"{self.task_id}: staging rows for model {self.model_id}")
        job_id = ref["job_id"]
        failed = import_counts(validation)["failedNumberRows"] or 0
        if failed and not self.allow_failed_rows:  # deletes the job: nothing was written
            self._fail_with_rows(
                ref, validation, f"failed validation with {failed} invalid row(s); nothing was written"
            )
        with self._deleted_on_failure(job_id):
            self.hook.run_import_job(job_id, True if failed else None)
        return ref

    def _stage(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Create an import job, push every row and validate; the job is deleted if any step fails."""
        job_id = call_until_accepted(
            lambda: self.hook.create_import_job(self.model_id, self.import_type, self._job_body()),
            busy=(ResourceBusyError,),
            deadline=self._deadline,
            what=f"create an import job for model {self.model_id}",
            first_interval=self.poll_interval,
            max_interval=self.max_poll_interval,
        )
        ref = {"job_id": job_id, "model_id": self.model_id, "import_type": self.import_type, "owned": True}
        self._ref = ref  # from here on, a kill or failure deletes the job
        with self._deleted_on_failure(job_id):
            sent = batches = 0
            for batch in row_batches(self.source, self.rows, self.batch_size):
                self.hook.push_rows(job_id, batch)
                sent += len(batch)
                batches += 1
            self.log.info("Pushed %d row(s) in %d batch(es) to import job %s.", sent, batches, job_id)
            validation = self.hook.validate_import_job(job_id)
        return ref, validation

    @contextlib.contextmanager
    def _deleted_on_failure(self, job_id: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            try:
                if self.hook.delete_import_job(job_id):
                    self.log.info("Deleted import job %s after the failure.", job_id)
            except Exception as err:
                self.log.warning("Could not delete import job %s: %s", job_id, err)
            raise

    def cancel(self, ref: dict[str, Any]) -> None:
        if ref.get("owned"):
            self.hook.delete_import_job(ref["job_id"])


class SapAnalyticsCloudRunMultiActionOperator(MultiActionStatusMixin, _SacOperator):
    """Run a Multi Action and wait for its execution (the connection needs a user-context refresh token).

    :param multi_action_id: ``<package>:<object>``, e.g. ``t.TEST:CEEF5D0F12345`` (the colon is literal).
    :param parameters: ``{"Version": ["public.Forecast"], "Rate": 1.05}``: a list gives member ids, a
        dict is sent as the value as-is, anything else is a plain value.
    :param fail_on_warning: fail when the execution ends with a warning (default: succeed and log it).

    SAC cannot stop an execution: ``cancel_on_kill`` defaults to False and only logs that it keeps running.
    """

    template_fields = ("multi_action_id", "parameters")
    template_fields_renderers: ClassVar[dict[str, str]] = {"parameters": "json"}
    trigger_class = SapAnalyticsCloudMultiActionTrigger
    xcom_ref_key = "sap_analytics_cloud_multi_action"
    external_id_key = "sap_analytics_cloud_multi_action"

    def __init__(
        self,
        *,
        multi_action_id: str,
        parameters: dict[str, Any] | None = None,
        fail_on_warning: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("cancel_on_kill", False)  # SAC cannot stop an execution: never claim it was
        super().__init__(**kwargs)
        self.multi_action_id = multi_action_id
        self.parameters = parameters
        self.fail_on_warning = fail_on_warning
        self.check_arguments(rendered=False)

    def check_arguments(self, rendered: bool) -> None:
        if (rendered or not _templated(self.multi_action_id)) and not (
            isinstance(self.multi_action_id, str) and MULTI_ACTION_ID.match(self.multi_action_id)
        ):
            raise ValueError(
                f"multi_action_id {self.multi_action_id!r} must be '<package>:<object>' (e.g. "
                "'t.TEST:CEEF5D0F12345'), as the Multi Action's URL in SAC shows it."
            )
        if (
            self.parameters is not None
            and (rendered or not _templated(self.parameters))
            and not isinstance(self.parameters, Mapping)
        ):
            raise ValueError("parameters must be a dict of parameter id -> value (a list for member ids).")

    def submit(self, context: Any) -> dict[str, Any]:
        self.check_arguments(rendered=True)
        execution_id = self.hook.start_multi_action(self.multi_action_id, parameter_values(self.parameters))
        return {"multi_action_id": self.multi_action_id, "execution_id": execution_id}

    def cancel(self, ref: dict[str, Any]) -> None:
        self.log.warning("SAC cannot stop Multi Action execution %s; it keeps running.", ref.get("execution_id"))


class SapAnalyticsCloudRunScheduleOperator(ScheduleRunStatusMixin, _SacOperator):
    """Run a data-management schedule now and wait for its run's log (internal, unsupported SAC service).

    :param schedule_id: the data import's schedule id, as ``getScheduleLogsByModel`` shows it.
    :param mapping_id: the mapping id of that import.
    :param model_name: the model as the service names it, e.g. ``t.G:ZEPPART_001``.
    :param run_payload: replaces the run request's body entirely (its shape was reconstructed).
    :param wait_for_running_run: when a run of the schedule is already in flight, wait for it to end
        first instead of failing (two runs at once both end stopped).
    :param log_grace_period: seconds the run's log may take to appear before the task fails.
    :param clock_skew: seconds of difference allowed between this machine's clock and SAC's.
    :param fail_on_rejected_rows: fail a run that finished with rejected rows (code 2).
    :param rejections_destination: where to keep the rejected rows' CSV.
    """

    template_fields = ("schedule_id", "mapping_id", "model_name", "run_payload", "rejections_destination")
    template_fields_renderers: ClassVar[dict[str, str]] = {"run_payload": "json"}
    trigger_class = SapAnalyticsCloudScheduleTrigger
    xcom_ref_key = "sap_analytics_cloud_schedule_run"
    external_id_key = "sap_analytics_cloud_schedule_run"

    def __init__(
        self,
        *,
        schedule_id: str,
        model_name: str,
        mapping_id: str | None = None,
        run_payload: dict[str, Any] | None = None,
        wait_for_running_run: bool = False,
        log_grace_period: float | timedelta = 600.0,
        clock_skew: float | timedelta = 120.0,
        fail_on_rejected_rows: bool = True,
        rejections_destination: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("cancel_on_kill", False)  # the service has no cancel call: never claim it was
        super().__init__(**kwargs)
        self.schedule_id = schedule_id
        self.mapping_id = mapping_id
        self.model_name = model_name
        self.run_payload = run_payload
        self.wait_for_running_run = wait_for_running_run
        self.log_grace_period = _seconds(log_grace_period, "log_grace_period")
        self.clock_skew = _seconds(clock_skew, "clock_skew")
        self.fail_on_rejected_rows = fail_on_rejected_rows
        self.rejections_destination = rejections_destination
        self.check_arguments(rendered=False)

    def check_arguments(self, rendered: bool) -> None:
        for name in ("schedule_id", "model_name"):
            value = getattr(self, name)
            if (rendered or not _templated(value)) and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} is required (getScheduleLogsByModel lists the model's schedules).")
        if self.run_payload is None and self.mapping_id in (None, ""):
            raise ValueError("Give mapping_id (the import's mapping id), or run_payload to send your own body.")
        if (
            self.run_payload is not None
            and (rendered or not _templated(self.run_payload))
            and not isinstance(self.run_payload, Mapping)
        ):
            raise ValueError("run_payload must be a dict (the JSON body of runScheduledJob).")

    def _payload(self) -> dict[str, Any]:
        if self.run_payload is not None:
            return dict(self.run_payload)
        return {"scheduleId": self.schedule_id, "mappingId": self.mapping_id}

    def submit(self, context: Any) -> dict[str, Any]:
        self.check_arguments(rendered=True)
        self.hook.require_tenant()
        schedule_id = str(self.schedule_id)

        def idle() -> tuple[bool, str]:
            running = in_flight(self.hook.schedule_logs(self.model_name), schedule_id)
            return (
                not running,
                f"run {running[0].get('executionId')} of schedule {schedule_id} in flight" if running else "",
            )

        done, description = idle()
        if not done:
            if not self.wait_for_running_run:
                raise ResourceBusyError(
                    f"{PLATFORM} schedule {schedule_id} has a run in flight ({description}); starting another now "
                    "would stop both. Retry later, or pass wait_for_running_run=True to wait for it first.",
                    platform=PLATFORM,
                )
            wait_until(
                idle,
                deadline=self._deadline,
                what=f"the running run of schedule {schedule_id} to end",
                first_interval=self.poll_interval,
                max_interval=self.max_poll_interval,
            )
        started_after = time.time()
        threshold = started_after - self.clock_skew
        logs = self.hook.schedule_logs(self.model_name)
        exclude = [  # runs already logged inside the skew window are not the one requested now
            str(run.get("executionId"))
            for run in refresh_logs(logs, schedule_id)
            if (parse_time(run.get("startTime")) or 0.0) >= threshold
        ]
        answer = self.hook.run_schedule(self._payload())
        returned = answer.get("scheduleId")
        if returned and str(returned) != schedule_id:
            self.log.warning(
                "SAC answered with schedule id %s, not %s; waiting for %s.", returned, schedule_id, schedule_id
            )
        self.log.info("Requested a run of schedule %s (SAC answered %s); waiting for its log.", schedule_id, answer)
        return {
            "schedule_id": schedule_id,
            "model_name": self.model_name,
            "started_after": started_after,
            "skew": self.clock_skew,
            "log_deadline": started_after + self.log_grace_period,
            "exclude": exclude,
        }

    def cancel(self, ref: dict[str, Any]) -> None:
        self.log.warning("The data-management service has no cancel call; the run of %s continues.", ref["schedule_id"])


def _seconds(value: float | timedelta, name: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValueError(f"{name} must not be negative.")
    return seconds
