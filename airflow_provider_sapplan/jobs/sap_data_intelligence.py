"""What SAP Data Intelligence's replication flows, change requests and graphs MEAN.

* A change request (every RMS write) goes PENDING -> VALIDATING -> PROCESSING -> COMPLETED | ERROR,
  and ``changerequeststatus`` shows the flow's LAST request by anyone: a status is ours only when
  its ``requestedAt`` falls between our PUT (minus clock skew) and DI's answer (plus clock skew).
* Task health comes from the tasks, never from the flow status (a flow is RUNNING with a task in
  ERROR). Any selected task in ERROR fails; RETRYING waits, is logged, and fails after
  ``max_retrying``.
* Timestamps come as local 7-digit fractions without zone (monitors), ``Z`` strings (change
  requests) or epoch seconds with 0 meaning unset (graphs); all become timezone-aware UTC.

Imports hooks and core only. The mixins here are shared by operators, sensors and triggers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, ClassVar, NoReturn

from airflow_provider_sapplan.core.remote_job import RemoteJobMixin
from airflow_provider_sapplan.core.status import Outcome, StatusTable
from airflow_provider_sapplan.core.trigger import RemoteJobTrigger
from airflow_provider_sapplan.exceptions import RemoteJobFailedError
from airflow_provider_sapplan.hooks.sap_data_intelligence import PLATFORM, SapDataIntelligenceHook

log = logging.getLogger(__name__)

UTC = timezone.utc
INITIAL_LOAD_COMPLETE = "initial_load_complete"
DELTA_RUNNING = "delta_running"
SUSPENDED = "suspended"
TARGET_STATES = (INITIAL_LOAD_COMPLETE, DELTA_RUNNING, SUSPENDED)
DEFAULT_CLOCK_SKEW = 60.0
PHASE_CHANGE_REQUEST = "change_request"
PHASE_TASKS = "tasks"

CHANGE_REQUEST_STATES = StatusTable(
    f"{PLATFORM} change request",
    running=("PENDING", "VALIDATING", "PROCESSING"),
    succeeded=("COMPLETED",),
    failed=("ERROR",),
)

GRAPH_STATES = StatusTable(
    f"{PLATFORM} graph",
    running=("pending", "running", "paused", "stopping"),
    succeeded=("completed",),
    failed=("dead",),
)
TASK_STATUSES = (
    "CREATED",
    "INITIAL_RUNNING",
    "DELTA_RUNNING",
    "SUSPENDING",
    "SUSPENDED",
    "RETRYING",
    "COMPLETED",
    "ERROR",
)
_LOGGED_TASK_STATES: set[str] = set()

# -- timestamps ----------------------------------------------------------------------------------

_ISO = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE
)


def parse_timestamp(value: Any, local_tz: tzinfo = UTC) -> datetime | None:
    """Any DI timestamp as an aware UTC datetime; None for missing, empty, 0 (unset) or unreadable.

    ``"2024-03-01T10:15:22.1234567"`` (local, 7-digit fraction, no zone) is read in ``local_tz``;
    ``"...Z"`` or an offset is honoured; numbers are epoch seconds (milliseconds when huge).
    """
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if value <= 0:
            return None
        seconds = value / 1000.0 if value > 1e11 else float(value)
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return parse_timestamp(float(text), local_tz)
    match = _ISO.match(text)
    if not match:
        return None
    date, clock, fraction, zone = match.groups()
    if clock.count(":") == 1:
        clock += ":00"
    micro = (fraction or "0")[:6].ljust(6, "0")
    try:
        naive = datetime.fromisoformat(f"{date}T{clock}.{micro}")
    except ValueError:
        return None
    if zone is None:
        return naive.replace(tzinfo=local_tz).astimezone(UTC)
    if zone.upper() == "Z":
        return naive.replace(tzinfo=UTC)
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    offset = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return naive.replace(tzinfo=offset).astimezone(UTC)


def iso(value: Any, local_tz: tzinfo = UTC) -> str | None:
    parsed = parse_timestamp(value, local_tz)
    return parsed.isoformat() if parsed else None


def metric(metrics: Any, key: str) -> int:
    """A sparse metrics map's value: a missing key (or null) is zero."""
    if not isinstance(metrics, Mapping):
        return 0
    try:
        return int(metrics.get(key) or 0)
    except (TypeError, ValueError):
        return 0


TASK_METRIC_KEYS = (
    "created",
    "initialRunning",
    "deltaRunning",
    "suspended",
    "error",
    "completed",
    "initialCompleted",
    "total",
)


def task_metrics(monitor: Mapping[str, Any]) -> dict[str, int]:
    """A flow monitor's sparse ``taskMetrics`` with every key present (missing keys are zero)."""
    metrics = monitor.get("taskMetrics") if isinstance(monitor, Mapping) else None
    return {key: metric(metrics, key) for key in TASK_METRIC_KEYS}


# -- change requests -------------------------------------------------------------------------------


def change_request_errors(cr: Mapping[str, Any]) -> list[str]:
    """Every object in ERROR with its text, e.g. ``SOURCE_DATASET MARA: table already in use ...``."""
    errors: list[str] = []
    for key, value in cr.items():
        if not (key.endswith("Objects") and isinstance(value, list)):
            continue
        for obj in value:
            if isinstance(obj, Mapping) and str(obj.get("status", "")).upper() == "ERROR":
                text = obj.get("error") or obj.get("message") or obj.get("statusInfo") or "no error text"
                errors.append(f"{obj.get('type', 'OBJECT')} {obj.get('name', '?')}: {text}")
    if not errors and cr.get("error"):
        errors.append(str(cr["error"]))
    return errors


def evaluate_change_request(cr: Mapping[str, Any], ref: Mapping[str, Any]) -> dict[str, Any]:
    """Judge ``changerequeststatus`` against OUR request (``ref``: requested_at, acknowledged_at, clock_skew).

    An older status means ours is not visible yet (running); a newer one is someone else's request
    (failed: ours can no longer be followed); otherwise the request's status decides.
    """
    skew = float(ref.get("clock_skew", DEFAULT_CLOCK_SKEW))
    ours_from = float(ref["requested_at"]) - skew
    ours_until = float(ref.get("acknowledged_at") or ref["requested_at"]) + skew
    raw = str(cr.get("status") or "").upper()
    at = parse_timestamp(cr.get("requestedAt"))
    base: dict[str, Any] = {
        "phase": PHASE_CHANGE_REQUEST,
        "flow": ref["flow"],
        "change_request": {
            "requestType": cr.get("requestType"),
            "status": cr.get("status"),
            "requestedAt": at.isoformat() if at else None,
            "requestCompletedAt": iso(cr.get("requestCompletedAt")),
        },
    }
    ours_text = datetime.fromtimestamp(float(ref["requested_at"]), UTC).isoformat()
    if at is None or at.timestamp() < ours_from:
        return {
            **base,
            "state": "NOT_YET_VISIBLE",
            "outcome": Outcome.RUNNING.value,
            "message": f"changerequeststatus still shows an older request ({at.isoformat() if at else 'none'}); "
            f"ours was sent at {ours_text}.",
        }
    if at.timestamp() > ours_until:
        return {
            **base,
            "state": "REPLACED",
            "outcome": Outcome.FAILED.value,
            "message": f"A newer change request by someone else ({cr.get('requestType') or 'unknown type'}, "
            f"requested at {at.isoformat()}, status {raw or 'unknown'}) replaced ours ({ref.get('request_type')}, "
            f"sent at {ours_text}) in changerequeststatus, so the outcome of ours can no longer be read. Check the "
            "flow in the DI monitor and run the task again once the other change is done.",
        }
    outcome = CHANGE_REQUEST_STATES.outcome(raw)
    message = f"Change request {ref.get('request_type')} on {ref['flow']} is {raw}."
    errors: list[str] = []
    if outcome is Outcome.FAILED:
        errors = change_request_errors(cr)
        message = (
            f"Change request {ref.get('request_type')} on replication flow {ref['flow']!r} ended in ERROR: "
            f"{'; '.join(errors) or 'DI gave no object in error'}."
        )
    return {**base, "state": raw or "UNKNOWN", "outcome": outcome.value, "message": message, "errors": errors}


# -- tasks -----------------------------------------------------------------------------------------


def retry_info(task: Mapping[str, Any]) -> tuple[str, int]:
    """A RETRYING task's reason (partition ``retryReason`` or ``statusInfo``) and its retry count."""
    reasons: list[str] = []
    count = 0
    partitions = task.get("partitions")
    if isinstance(partitions, Mapping):
        for partition in partitions.values():
            if not isinstance(partition, Mapping):
                continue
            reason = (partition.get("retryInfo") or {}).get("retryReason") if partition.get("retrying") else None
            if reason and reason not in reasons:
                reasons.append(str(reason))
            count = max(count, metric(partition.get("partitionMetrics"), "retryCount"))
    for key in ("deltaLoadMetrics", "initialLoadMetrics"):
        count = max(count, metric(task.get(key), "retryCount"))
    reason = ", ".join(reasons) or str(task.get("statusInfo") or "no reason given")
    return reason, count


def task_summary(task: Mapping[str, Any], local_tz: tzinfo = UTC) -> dict[str, Any]:
    """One task's result: status, records, partitions and times in UTC (sparse fields read as zero)."""
    partitions = task.get("partitions")
    count = metric(task, "numberOfPartitions") or (len(partitions) if isinstance(partitions, Mapping) else 0)
    return {
        "name": task.get("name"),
        "status": str(task.get("status") or "").upper() or None,
        "load_type": task.get("loadType"),
        "active": task.get("active"),
        "status_info": task.get("statusInfo") or "",
        "records_transferred": metric(task, "numberOfRecordsTransferred"),
        "partitions": count,
        "start_time": iso(task.get("startTime"), local_tz),
        "initial_load_end_time": iso(task.get("initialLoadEndTime"), local_tz),
        "last_runtime_updated": iso(task.get("lastRuntimeUpdated"), local_tz),
    }


def task_reached(target: str, task: Mapping[str, Any], local_tz: tzinfo = UTC) -> bool:
    """Whether one (non-ERROR) task is in ``target``.

    ``initial_load_complete``: COMPLETED, or DELTA_RUNNING with an initial-load end time.
    ``delta_running``: DELTA_RUNNING (an INITIAL-only task that is COMPLETED counts: it has no delta).
    ``suspended``: not active: SUSPENDED, or COMPLETED/CREATED (nothing running to suspend).
    """
    status = str(task.get("status") or "").upper()
    if target == INITIAL_LOAD_COMPLETE:
        return status == "COMPLETED" or (
            status == "DELTA_RUNNING" and parse_timestamp(task.get("initialLoadEndTime"), local_tz) is not None
        )
    if target == DELTA_RUNNING:
        return status == "DELTA_RUNNING" or (status == "COMPLETED" and str(task.get("loadType")).upper() == "INITIAL")
    if target == SUSPENDED:
        return status in ("SUSPENDED", "COMPLETED") or (status == "CREATED" and task.get("active") is not True)
    raise ValueError(f"target_state must be one of {', '.join(TARGET_STATES)}, not {target!r}.")


class RetryWatch:
    """Remembers since when each task has been RETRYING (in this process: a wait's own memory)."""

    def __init__(self) -> None:
        self.since: dict[str, float] = {}
        self.last_count: dict[str, int] = {}

    def observe(self, name: str, retrying: bool, now: float) -> float:
        """Seconds ``name`` has been RETRYING as seen by this wait (0 when it is not)."""
        if not retrying:
            self.since.pop(name, None)
            self.last_count.pop(name, None)
            return 0.0
        start = self.since.setdefault(name, now)
        return now - start


def evaluate_tasks(
    tasks: Iterable[Mapping[str, Any]],
    ref: Mapping[str, Any],
    *,
    local_tz: tzinfo = UTC,
    watch: RetryWatch | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Judge the selected tasks against ``ref["target_state"]`` (ERROR fails, RETRYING is bounded)."""
    now = time.time() if now is None else now
    watch = watch or RetryWatch()
    target = str(ref["target_state"])
    selected = ref.get("tasks") or None
    rows = [task for task in tasks if isinstance(task, Mapping)]
    by_name = {str(task.get("name")): task for task in rows}
    names = list(selected) if selected else list(by_name)
    summaries = [task_summary(by_name[name], local_tz) for name in names if name in by_name]
    base: dict[str, Any] = {
        "phase": PHASE_TASKS,
        "flow": ref["flow"],
        "target_state": target,
        "tasks": summaries,
        "records_transferred": sum(s["records_transferred"] for s in summaries),
    }
    counts: dict[str, int] = {}
    for summary in summaries:
        counts[str(summary["status"])] = counts.get(str(summary["status"]), 0) + 1
    state = ",".join(f"{key}:{value}" for key, value in sorted(counts.items())) or "NO_TASKS"
    missing = [name for name in names if name not in by_name]
    errors = [
        f"{name}: {by_name[name].get('statusInfo') or by_name[name].get('state') or 'no status info'}"
        for name in names
        if name in by_name and str(by_name[name].get("status", "")).upper() == "ERROR"
    ]
    if errors:
        return {
            **base,
            "state": state,
            "outcome": Outcome.FAILED.value,
            "message": f"Replication flow {ref['flow']!r}: task(s) in ERROR: {'; '.join(errors)}.",
        }
    max_retrying = ref.get("max_retrying")
    waiting: list[str] = []
    for name in names:
        task = by_name.get(name)
        retrying = task is not None and str(task.get("status", "")).upper() == "RETRYING"
        spent = watch.observe(name, retrying, now)
        if retrying and task is not None:
            reason, count = retry_info(task)
            if watch.last_count.get(name) != count:
                watch.last_count[name] = count
                log.warning(
                    "Replication flow %s task %s is RETRYING (%s, retry count %d) for %.0fs so far.",
                    ref["flow"],
                    name,
                    reason,
                    count,
                    spent,
                )
            if max_retrying is not None and spent >= float(max_retrying):
                return {
                    **base,
                    "state": state,
                    "outcome": Outcome.FAILED.value,
                    "message": f"Replication flow {ref['flow']!r} task {name!r} has been RETRYING for {spent:.0f}s "
                    f"(over max_retrying {float(max_retrying):.0f}s): {reason}, retry count {count}. DI keeps "
                    "retrying on its own; check the source (e.g. DATA_NOT_READY) or raise max_retrying.",
                }
        if task is None or not task_reached(target, task, local_tz):
            status = str(task.get("status") or "") if task is not None else ""
            if task is not None and status.upper() not in TASK_STATUSES and status not in _LOGGED_TASK_STATES:
                _LOGGED_TASK_STATES.add(status)
                log.warning("%s task %s has an unknown status %r; waiting.", PLATFORM, name, status)
            waiting.append(name)
    if missing:
        state += f",NOT_IN_MONITOR:{len(missing)}"
    if not names or waiting:
        return {
            **base,
            "state": state,
            "outcome": Outcome.RUNNING.value,
            "message": f"Waiting for {', '.join(waiting) or 'the flow tasks'} to be {target}.",
        }
    return {**base, "state": state, "outcome": Outcome.SUCCEEDED.value, "message": f"All tasks are {target}."}


# -- graphs ----------------------------------------------------------------------------------------


def graph_outcome(graph: Mapping[str, Any]) -> Outcome:
    """completed succeeds, dead fails; pending/running/paused/stopping wait; ``unknown`` waits, logged."""
    raw = str(graph.get("status") or "")
    if raw.lower() == "unknown":
        log.warning("%s graph %s reports status 'unknown'; waiting.", PLATFORM, graph.get("handle"))
        return Outcome.RUNNING
    return GRAPH_STATES.outcome(raw)


def graph_summary(graph: Mapping[str, Any]) -> dict[str, Any]:
    """A graph run with its epoch-second times as UTC ISO strings (0 = unset -> None)."""
    summary = {key: graph.get(key) for key in ("handle", "src", "name", "status", "message", "user", "tenant")}
    for key in ("submitted", "started", "running", "updated", "stopped"):
        summary[key] = iso(graph.get(key))
    return summary


# -- mixins shared by operators, sensors and triggers ----------------------------------------------


class DataIntelligenceHookMixin:
    """One hook per task run for DI operators and sensors: the connection is read once."""

    sap_data_intelligence_conn_id: str

    @property
    def hook(self) -> SapDataIntelligenceHook:
        hook = self.__dict__.get("_hook")
        if hook is None:
            hook = self.__dict__["_hook"] = SapDataIntelligenceHook(self.sap_data_intelligence_conn_id)
        return hook


class FlowWaitMixin(DataIntelligenceHookMixin, RemoteJobMixin):
    """Reads and judges a flow wait: the change-request phase, then the tasks phase.

    Operators and sensors set :attr:`trigger_class` (tasks) and :attr:`change_request_trigger_class`.
    """

    conn_id_field = "sap_data_intelligence_conn_id"
    change_request_trigger_class: ClassVar[type[RemoteJobTrigger]]

    @property
    def retry_watch(self) -> RetryWatch:
        watch = self.__dict__.get("_retry_watch")
        if watch is None:
            watch = self.__dict__["_retry_watch"] = RetryWatch()
        return watch

    def fetch(self, ref: dict[str, Any]) -> dict[str, Any]:
        if ref.get("phase") == PHASE_CHANGE_REQUEST:
            return evaluate_change_request(self.hook.change_request_status(ref["flow"]), ref)
        tasks = self.hook.task_monitors(ref["flow"])
        return evaluate_tasks(tasks, ref, local_tz=self.hook.timezone, watch=self.retry_watch)

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return Outcome(status.get("outcome", Outcome.RUNNING.value))

    def raw_state(self, status: dict[str, Any]) -> str:
        return f"{status.get('phase')}:{status.get('state')}"

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        raise_flow_failure(ref, status)

    def trigger_class_for(self, ref: dict[str, Any]) -> type[RemoteJobTrigger]:
        if ref.get("phase") == PHASE_CHANGE_REQUEST:
            return self.change_request_trigger_class
        return self.trigger_class


def raise_flow_failure(ref: Mapping[str, Any], status: Mapping[str, Any]) -> NoReturn:
    message = status.get("message") or f"Replication flow {ref.get('flow')!r} failed ({status.get('state')})."
    raise RemoteJobFailedError(str(message), platform=PLATFORM, details={"ref": dict(ref), "status": dict(status)})


class GraphStatusMixin(DataIntelligenceHookMixin, RemoteJobMixin):
    """How a graph run is read and judged, shared by the run-graph operator and the graph sensor."""

    conn_id_field = "sap_data_intelligence_conn_id"

    def fetch(self, ref: dict[str, Any]) -> dict[str, Any]:
        return self.hook.get_graph(ref["handle"])

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return graph_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return str(status.get("status"))

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        return graph_summary(status)

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        raise_graph_failure(ref, status)


def raise_graph_failure(ref: Mapping[str, Any], graph: Mapping[str, Any]) -> NoReturn:
    raise RemoteJobFailedError(
        f"{PLATFORM} graph {graph.get('src') or ref.get('graph') or ''} run {ref.get('handle')} ended "
        f"{graph.get('status')}: {graph.get('message') or 'no message'}.",
        platform=PLATFORM,
        details={"ref": dict(ref), "graph": graph_summary(graph)},
    )


def check_target_state(target_state: Any, allowed: Iterable[str] = TARGET_STATES, *, optional: bool = False) -> None:
    """Validate ``target_state`` at construction/render time; the error names the allowed values."""
    allowed = tuple(allowed)
    if target_state is None and optional:
        return
    if target_state not in allowed:
        raise ValueError(f"target_state must be one of {', '.join(map(repr, allowed))}, not {target_state!r}.")
