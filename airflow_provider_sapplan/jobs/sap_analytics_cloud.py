"""What SAP Analytics Cloud's jobs mean: status tables, run matching, failures and the shared mixins.

Three kinds of remote work, one module: Data Import API jobs (``jobStatus``), Multi Action
executions (``status``, any case) and data-management schedule runs (refresh-log codes). Operators
and sensors share the mixins below; triggers share the status functions. Nothing here imports
triggers, sensors or operators.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, NoReturn

from airflow_provider_sapplan.core.remote_job import RemoteJobMixin
from airflow_provider_sapplan.core.status import Outcome, StatusTable
from airflow_provider_sapplan.core.storage import open_for_read, open_for_write
from airflow_provider_sapplan.exceptions import InvalidRequestError, RemoteJobFailedError
from airflow_provider_sapplan.hooks.sap_analytics_cloud import PLATFORM, SapAnalyticsCloudHook, read_key

log = logging.getLogger(__name__)

SHOW_ROWS = 10
"""Rejected or invalid rows quoted in the log and in error messages."""

# -- Data Import API jobs ---------------------------------------------------------------------------

IMPORT_JOB_STATES = StatusTable(
    f"{PLATFORM} import job",
    running=("READY_FOR_DATA", "READY_FOR_WRITE", "PROCESSING"),
    succeeded=("COMPLETED",),
    failed=("FAILED",),
)


def import_raw_state(status: Mapping[str, Any]) -> str:
    return str(read_key(status, "jobStatus") or "")


def import_outcome(status: Mapping[str, Any]) -> Outcome:
    return IMPORT_JOB_STATES.outcome(import_raw_state(status))


def _count(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def import_counts(status: Mapping[str, Any]) -> dict[str, int | None]:
    """Row counts of a job status (SAC sends them as strings, sometimes under additionalInformation)."""
    info = read_key(status, "additionalInformation")
    sources = [status, info if isinstance(info, Mapping) else {}]
    counts: dict[str, int | None] = {}
    for name in ("totalNumberRowsInJob", "failedNumberRows"):
        counts[name] = next((c for c in (_count(read_key(s, name)) for s in sources) if c is not None), None)
    return counts


def check_columns(
    columns: Iterable[str], mapping: Mapping[str, str] | None, model_columns: list[str], model_id: str
) -> None:
    """Every column sent (after ``mapping``: model column -> source column) must exist in the model."""
    source_to_target = {str(source): str(target) for target, source in (mapping or {}).items()}
    known = set(model_columns)
    unknown_targets = sorted(t for t in (mapping or {}) if t not in known)
    unknown = sorted({c for c in columns if source_to_target.get(c, c) not in known})
    if unknown_targets or unknown:
        parts = []
        if unknown:
            parts.append(f"source column(s) {', '.join(map(repr, unknown))} match no model column")
        if unknown_targets:
            parts.append(f"mapping target(s) {', '.join(map(repr, unknown_targets))} are not model columns")
        raise InvalidRequestError(
            f"{'; '.join(parts)}. Model {model_id} has the columns {', '.join(model_columns)}: rename the source "
            "columns or map them with mapping={'<model column>': '<source column>'}. No rows were sent.",
            platform=PLATFORM,
            details={"unknown": unknown, "model_columns": model_columns},
        )


def csv_header(source: Any) -> list[str]:
    """The header row of a CSV source (read alone: the rest of the file is not touched)."""
    with open_for_read(source) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        return next(csv.reader(text), [])


def row_batches(
    source: Any = None, rows: Iterable[Mapping[str, Any]] | None = None, batch_size: int = 10_000
) -> Iterator[list[dict[str, Any]]]:
    """Rows in lists of at most ``batch_size``, streamed: a CSV source is read one batch at a time."""
    if rows is not None:
        iterator: Iterator[Mapping[str, Any]] = iter(rows)
        while batch := [dict(row) for row in itertools.islice(iterator, batch_size)]:
            yield batch
        return
    with open_for_read(source) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        reader = csv.DictReader(text)
        while batch := [dict(row) for row in itertools.islice(reader, batch_size)]:
            yield batch


def keep_rows(destination: Any, rows: list[Any]) -> None:
    """Write rejected rows as JSON lines to a local or object-storage path."""
    with open_for_write(destination) as handle:
        for row in rows:
            handle.write(json.dumps(row, default=str).encode() + b"\n")


# -- Multi Actions ----------------------------------------------------------------------------------

MULTI_ACTION_STATES = StatusTable(
    f"{PLATFORM} Multi Action",
    running=("running", "queued", "pending"),
    succeeded=("success", "successful", "warning"),
    failed=("error", "failed"),
)


def multi_action_raw_state(status: Mapping[str, Any]) -> str:
    return str(read_key(status, "status", "executionStatus") or "")


def multi_action_messages(status: Mapping[str, Any]) -> str:
    messages = read_key(status, "messages", "message", "errors", "error")
    if isinstance(messages, list):
        texts = [str(read_key(m, "message", "text") or m) if isinstance(m, Mapping) else str(m) for m in messages]
        return "; ".join(texts)
    if isinstance(messages, Mapping):
        return str(read_key(messages, "message", "text") or messages)
    return str(messages or "")


def parameter_values(parameters: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """``{"Version": ["public.Forecast"], "Rate": 1.05}`` as SAC's ``parameterValues``.

    A list names dimension members (``{"memberIds": [...]}``); a dict is passed as the value as-is
    (e.g. with ``hierarchyId``); anything else is a plain value.
    """
    values = []
    for name, value in (parameters or {}).items():
        if isinstance(value, (list, tuple)):
            value = {"memberIds": [str(member) for member in value]}
        values.append({"parameterId": str(name), "value": value})
    return values


# -- data-management schedules -----------------------------------------------------------------------

NO_LOG_YET = "NO_LOG_YET"
NO_LOG = "NO_LOG"
REFRESH_CODES = StatusTable(
    f"{PLATFORM} data-management run",
    running=("5", NO_LOG_YET),
    succeeded=("1", "2"),
    failed=("3", "4", NO_LOG),
)
CODE_MEANINGS = {"5": "running", "1": "done", "2": "done with rejected rows", "3": "cancelled", "4": "stopped"}


def parse_time(value: Any) -> float | None:
    """An SAC timestamp (ISO-8601, UTC, with or without Z or milliseconds; or epoch ms) as epoch seconds."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value) / (1000.0 if value > 1e11 else 1.0)
    text = str(value).strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def refresh_logs(entries: Iterable[Mapping[str, Any]], schedule_id: str) -> list[dict[str, Any]]:
    """Every refresh log of ``schedule_id`` in a ``getScheduleLogsByModel`` answer."""
    found = []
    for entry in entries:
        if str(read_key(entry, "scheduleId")) != str(schedule_id):
            continue
        for run in read_key(entry, "refreshLogs") or []:
            if isinstance(run, Mapping):
                found.append(dict(run))
    return found


def in_flight(entries: Iterable[Mapping[str, Any]], schedule_id: str) -> list[dict[str, Any]]:
    """Runs of ``schedule_id`` still running (code 5)."""
    return [run for run in refresh_logs(entries, schedule_id) if str(run.get("status")) == "5"]


def find_run(
    entries: Iterable[Mapping[str, Any]],
    schedule_id: str,
    started_after: float,
    skew: float,
    exclude: Iterable[str] = (),
) -> dict[str, Any] | None:
    """The first run of ``schedule_id`` that started at or after ``started_after - skew``.

    ``exclude`` lists executions already logged before the run was requested (inside the skew
    window they would otherwise be taken for the new run).
    """
    skip = {str(e) for e in exclude}
    candidates = []
    for run in refresh_logs(entries, schedule_id):
        started = parse_time(run.get("startTime"))
        if str(run.get("executionId")) in skip:
            continue
        if started is not None and started >= started_after - skew:
            candidates.append((started, run))
    return min(candidates, key=lambda pair: pair[0])[1] if candidates else None


def schedule_run_status(entries: Iterable[Mapping[str, Any]], ref: Mapping[str, Any], now: float | None = None) -> dict:
    """The status document of the run ``ref`` waits for, or a NO_LOG_YET / NO_LOG placeholder."""
    now = time.time() if now is None else now
    run = find_run(
        entries, ref["schedule_id"], float(ref["started_after"]), float(ref.get("skew", 0)), ref.get("exclude") or ()
    )
    if run is not None:
        return {"state": str(run.get("status")), "run": run}
    deadline = ref.get("log_deadline")
    state = NO_LOG if deadline is not None and now >= float(deadline) else NO_LOG_YET
    return {"state": state, "run": None}


def run_counts(run: Mapping[str, Any] | None) -> dict[str, Any]:
    result = read_key(run or {}, "wranglingAndUpdateResult")
    data = read_key(result, "data") if isinstance(result, Mapping) else None
    data = data if isinstance(data, Mapping) else {}
    return {name: _count(data.get(name)) for name in ("allCount", "insertedCount", "rejectedCount")}


# -- mixins shared by operators and sensors -----------------------------------------------------------


class SacHookMixin:
    """One hook per task run: the connection is read once, not on every poke."""

    sap_analytics_cloud_conn_id: str

    @property
    def hook(self) -> SapAnalyticsCloudHook:
        hook = self.__dict__.get("_hook")
        if hook is None:
            hook = self.__dict__["_hook"] = SapAnalyticsCloudHook(self.sap_analytics_cloud_conn_id)
        return hook


class ImportJobStatusMixin(SacHookMixin, RemoteJobMixin):
    """Reading and judging a Data Import API job (``ref``: ``job_id``, ``model_id``, ``owned``)."""

    conn_id_field = "sap_analytics_cloud_conn_id"
    allow_failed_rows: bool = False
    invalid_rows_destination: Any = None

    def fetch(self, ref: dict[str, Any]) -> dict[str, Any]:
        return self.hook.import_job_status(ref["job_id"])

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return import_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return import_raw_state(status)

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        counts = import_counts(status)
        if counts["failedNumberRows"] and not self.allow_failed_rows:
            self._fail_with_rows(ref, status, f"completed with {counts['failedNumberRows']} failed row(s)")
        if counts["failedNumberRows"]:
            self._report_rows(ref)
        log.info("%s import job %s completed: %s", PLATFORM, ref["job_id"], counts)
        return {**ref, "job_status": import_raw_state(status), **counts}

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        self._fail_with_rows(ref, status, f"ended {import_raw_state(status)}")

    def _report_rows(self, ref: dict[str, Any]) -> list[Any]:
        try:
            rows = self.hook.invalid_rows(ref["job_id"])
        except Exception as err:  # the failure itself matters more than its detail
            log.warning("Could not read the invalid rows of job %s: %s", ref["job_id"], err)
            return []
        for row in rows[:SHOW_ROWS]:
            log.warning("Invalid row: %s", json.dumps(row, default=str)[:500])
        if rows and self.invalid_rows_destination:
            keep_rows(self.invalid_rows_destination, rows)
            log.warning("All %d invalid row(s) written to %s.", len(rows), self.invalid_rows_destination)
        return rows

    def _fail_with_rows(self, ref: dict[str, Any], status: dict[str, Any], what: str) -> NoReturn:
        rows = self._report_rows(ref)
        deleted = ""
        if ref.get("owned"):
            try:
                self.hook.delete_import_job(ref["job_id"])
                deleted = " The job was deleted (it would otherwise count against the active-job limits)."
            except Exception as err:
                log.warning("Could not delete import job %s: %s", ref["job_id"], err)
        description = read_key(status, "jobStatusDescription") or ""
        raise RemoteJobFailedError(
            f"{PLATFORM} import job {ref['job_id']} into model {ref.get('model_id')} {what}"
            f"{': ' + str(description) if description else ''}; {len(rows)} invalid row(s)"
            f"{', first: ' + json.dumps(rows[:3], default=str)[:600] if rows else ''}. Fix the rows, or pass "
            f"allow_failed_rows=True to accept a partial load.{deleted}",
            platform=PLATFORM,
            details={**ref, "status": status, "invalid_rows": len(rows)},
        )


class MultiActionStatusMixin(SacHookMixin, RemoteJobMixin):
    """Reading and judging a Multi Action execution (``ref``: ``multi_action_id``, ``execution_id``)."""

    conn_id_field = "sap_analytics_cloud_conn_id"
    fail_on_warning: bool = False

    def fetch(self, ref: dict[str, Any]) -> dict[str, Any]:
        return self.hook.multi_action_execution(ref["multi_action_id"], ref["execution_id"])

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return MULTI_ACTION_STATES.outcome(multi_action_raw_state(status))

    def raw_state(self, status: dict[str, Any]) -> str:
        return multi_action_raw_state(status)

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        raw = multi_action_raw_state(status)
        if raw.lower() == "warning":
            if self.fail_on_warning:
                self.failed(ref, status, context)
            log.warning(
                "Multi Action %s ended with a warning: %s", ref["multi_action_id"], multi_action_messages(status)
            )
        return {**ref, "status": raw, "messages": multi_action_messages(status)}

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        raise RemoteJobFailedError(
            f"{PLATFORM} Multi Action {ref['multi_action_id']} execution {ref['execution_id']} ended "
            f"{multi_action_raw_state(status)}: {multi_action_messages(status) or 'no message'}.",
            platform=PLATFORM,
            details={**ref, "status": status},
        )


class ScheduleRunStatusMixin(SacHookMixin, RemoteJobMixin):
    """Reading and judging a data-management run (``ref``: schedule, model, start time, skew, grace)."""

    conn_id_field = "sap_analytics_cloud_conn_id"
    fail_on_rejected_rows: bool = True
    rejections_destination: Any = None

    def fetch(self, ref: dict[str, Any]) -> dict[str, Any]:
        return schedule_run_status(self.hook.schedule_logs(ref["model_name"]), ref)

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return REFRESH_CODES.outcome(status.get("state"))

    def raw_state(self, status: dict[str, Any]) -> str:
        return str(status.get("state"))

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        run = status.get("run") or {}
        counts = run_counts(run)
        result = {**ref, "state": status.get("state"), "execution_id": run.get("executionId"), **counts}
        if status.get("state") == "2":
            self._report_rejections(run)
            message = (
                f"{PLATFORM} data-management run of schedule {ref['schedule_id']} finished with rejected rows: "
                f"{counts['insertedCount']} inserted, {counts['rejectedCount']} rejected of {counts['allCount']}."
            )
            if self.fail_on_rejected_rows:
                raise RemoteJobFailedError(
                    message + " Fix the source data (load master data before facts), or pass "
                    "fail_on_rejected_rows=False to accept a partial load.",
                    platform=PLATFORM,
                    details=result,
                )
            log.warning(message)
        log.info("Data-management run %s of schedule %s: %s", run.get("executionId"), ref["schedule_id"], counts)
        return result

    def _report_rejections(self, run: Mapping[str, Any]) -> None:
        execution_id = run.get("executionId")
        if not execution_id:
            return
        try:
            chunks = self.hook.rejections_csv(str(execution_id))
            if self.rejections_destination:
                with open_for_write(self.rejections_destination) as handle:
                    head = b""
                    for chunk in chunks:
                        handle.write(chunk)
                        if len(head) < 64 * 1024:
                            head += chunk[: 64 * 1024]
                log.warning("The whole rejections file is at %s.", self.rejections_destination)
            else:
                head = next(iter(chunks), b"")
            for line in head.decode("utf-8", "replace").splitlines()[: SHOW_ROWS + 1]:
                log.warning("Rejected: %s", line)
        except Exception as err:
            log.warning("Could not read the rejected rows of run %s: %s", execution_id, err)

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        state = status.get("state")
        if state == NO_LOG:
            message = (
                f"{PLATFORM} shows no run of schedule {ref['schedule_id']} on model {ref['model_name']} that "
                f"started after {datetime.fromtimestamp(float(ref['started_after']), timezone.utc).isoformat()} "
                "within the grace window: the run request was accepted (status 200) but no run was logged. Check "
                "the connection's tenant extra, the schedule and mapping ids (getScheduleLogsByModel lists them), "
                "or raise log_grace_period if the tenant logs runs late."
            )
        else:
            run = status.get("run") or {}
            message = (
                f"{PLATFORM} data-management run {run.get('executionId')} of schedule {ref['schedule_id']} ended "
                f"with code {state} ({CODE_MEANINGS.get(str(state), 'unknown')}); a run started while another was "
                "in flight stops both."
            )
        raise RemoteJobFailedError(message, platform=PLATFORM, details={**ref, "status": status})
