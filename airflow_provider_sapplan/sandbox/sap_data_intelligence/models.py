"""SAP Data Intelligence state: replication flows, their tasks and change requests, pipeline graphs.

Plain Python, no HTTP. State advances lazily on every read from the elapsed (scaled) time:

* a change request goes PENDING -> VALIDATING -> PROCESSING -> COMPLETED (or ERROR with objects in
  error, on demand); ``changerequeststatus`` shows the flow's LAST request by anyone;
* when a run request completes, its tasks go CREATED/SUSPENDED -> INITIAL_RUNNING -> COMPLETED
  (INITIAL load type) or DELTA_RUNNING (REPLICATE, with an initial-load end time); a suspend
  request takes active tasks SUSPENDING -> SUSPENDED; injected errors make a task RETRYING (with a
  retry reason and a growing count) and then ERROR with ``active: false`` (or RETRYING forever);
* graphs run pending -> running -> completed | dead per configured outcome; DELETE stops them.

Monitor timestamps are local (the tenant's ``timezone``) with 7-digit fractions and no zone;
change-request timestamps carry ``Z``; graph times are epoch seconds with 0 meaning unset.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from ..platform import SandboxContext

TENANT = "default"
USER = "etl_user"
PASSWORD = "di-secret"

RUN_ALL = "RUN_OR_RESUME_ALL_INACTIVE_TASKS"
SUSPEND_ALL = "SUSPEND_ALL_ACTIVE_TASKS"
RUN_SELECTIVE = "RUN_OR_RESUME_SELECTIVE_INACTIVE_TASKS"
SUSPEND_SELECTIVE = "SUSPEND_SELECTIVE_ACTIVE_TASKS"
REQUEST_TYPES = (RUN_ALL, SUSPEND_ALL, RUN_SELECTIVE, SUSPEND_SELECTIVE)
CR_STAGES = ("PENDING", "VALIDATING", "PROCESSING")
ACTIVE = ("INITIAL_RUNNING", "DELTA_RUNNING", "RETRYING")
METRIC_KEYS = {
    "CREATED": "created",
    "INITIAL_RUNNING": "initialRunning",
    "RETRYING": "initialRunning",
    "DELTA_RUNNING": "deltaRunning",
    "SUSPENDING": "suspended",
    "SUSPENDED": "suspended",
    "ERROR": "error",
    "COMPLETED": "completed",
}


class DataIntelligenceError(Exception):
    """An API error: HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Config:
    """Durations in emulated seconds (scaled by ``time_scale``) and the tenant's time zone."""

    change_request_step: float = 1.0
    initial_load: float = 3.0
    suspend: float = 1.0
    retry_interval: float = 1.0
    graph_duration: float = 3.0
    timezone: str = "Europe/Berlin"
    records_per_second: int = 1000


@dataclass
class TaskError:
    """An injected task failure: ``retries`` RETRYING rounds (None = forever), then ERROR."""

    reason: str = "DATA_NOT_READY"
    retries: int | None = 3
    message: str = "Source object is not accessible: table /CDS/I_PRODUCT does not exist."


@dataclass
class Task:
    name: str
    load_type: str
    source: str
    target: str
    status: str = "CREATED"
    active: bool = False
    since: float = 0.0
    start_time: float | None = None
    initial_load_end: float | None = None
    records: int = 0
    partitions: int = 0
    status_info: str = ""
    retry_count: int = 0
    retry_reason: str | None = None
    error: TaskError | None = None


@dataclass
class ChangeRequest:
    request_type: str
    tasks: list[str] | None
    requested_at: float
    error_objects: list[dict[str, Any]] = field(default_factory=list)
    applied: bool = False
    completed_at: float | None = None


@dataclass
class Flow:
    name: str
    tasks: dict[str, Task]
    source_connection: str = "S4_ABAP"
    target_connection: str = "HANA_TGT"
    change_request: ChangeRequest | None = None
    fail_next: list[dict[str, Any]] | None = None
    changed_at: float = 0.0


@dataclass
class Graph:
    handle: str
    src: str
    name: str
    substitutions: dict[str, Any]
    submitted: float
    outcome: str = "completed"
    message: str = ""
    duration: float = 3.0
    stopped_at: float | None = None


def seed_flows(now: float) -> dict[str, Flow]:
    def task(name: str, load_type: str, source: str) -> Task:
        return Task(name=name, load_type=load_type, source=source, target=f"/SCHEMA/{name}", since=now)

    return {
        "RF_SALES": Flow(
            "RF_SALES",
            {
                "VBAK": task("VBAK", "REPLICATE", "/CDS/I_SALESDOCUMENT"),
                "VBAP": task("VBAP", "REPLICATE", "/CDS/I_SALESDOCUMENTITEM"),
                "KNA1": task("KNA1", "INITIAL", "/CDS/I_CUSTOMER"),
            },
            changed_at=now,
        ),
        "RF_MARA": Flow("RF_MARA", {"MARA": task("MARA", "REPLICATE", "/CDS/I_PRODUCT")}, changed_at=now),
    }


class DataIntelligenceBackend:
    """The tenant: flows, graphs, configuration and counters (scriptable from tests)."""

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.config = Config()
            self.flows = seed_flows(self.context.clock())
            self.graphs: dict[str, Graph] = {}
            self.graph_outcomes: dict[str, dict[str, Any]] = {}
            self.change_requests = 0
            self.graph_starts = 0
            self.graph_stops = 0

    # -- helpers ---------------------------------------------------------------------------------

    def now(self) -> float:
        return self.context.clock()

    def scaled(self, seconds: float) -> float:
        return self.context.scaled(seconds)

    def local(self, epoch: float | None) -> str | None:
        """A monitor timestamp: local time, 7-digit fraction, no zone."""
        if epoch is None:
            return None
        moment = datetime.fromtimestamp(epoch, ZoneInfo(self.config.timezone))
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0"

    @staticmethod
    def utc(epoch: float | None) -> str | None:
        """A change-request timestamp: UTC with 7-digit fraction and ``Z``."""
        if epoch is None:
            return None
        moment = datetime.fromtimestamp(epoch, timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"

    def flow(self, name: str) -> Flow:
        flow = self.flows.get(name)
        if flow is None:
            raise DataIntelligenceError(404, f"Replication flow '{name}' does not exist")
        return flow

    # -- scripting (tests, control API) ---------------------------------------------------------

    def configure(self, **values: Any) -> Config:
        with self.lock:
            for key, value in values.items():
                if not hasattr(self.config, key):
                    raise ValueError(f"unknown sandbox setting {key!r}")
                setattr(self.config, key, type(getattr(self.config, key))(value))
            return self.config

    def fail_next_request(self, flow: str, objects: list[dict[str, Any]] | None = None) -> None:
        """The flow's next change request ends in ERROR with these objects in error."""
        with self.lock:
            self.flow(flow).fail_next = objects or [
                {
                    "name": "MARA",
                    "type": "SOURCE_DATASET",
                    "status": "ERROR",
                    "error": "table already in use by replication flow RF_OTHER",
                },
            ]

    def inject_task_error(
        self, flow: str, task: str, *, reason: str = "DATA_NOT_READY", retries: int | None = 3, message: str = ""
    ) -> None:
        """After its initial load starts, ``task`` retries ``retries`` times (None: forever), then ERROR."""
        with self.lock:
            found = self.flow(flow).tasks.get(task)
            if found is None:
                raise DataIntelligenceError(404, f"Task '{task}' does not exist in flow '{flow}'")
            found.error = TaskError(reason=reason, retries=retries, message=message or TaskError.message)

    def foreign_request(self, flow: str, request_type: str = SUSPEND_ALL, tasks: list[str] | None = None) -> None:
        """Someone else's change request on ``flow`` (it replaces ours in changerequeststatus)."""
        self.request_change(flow, request_type, tasks)

    def set_task(self, flow: str, task: str, **values: Any) -> None:
        """Force a task's fields (status, active, ...) for a test."""
        with self.lock:
            found = self.flow(flow).tasks[task]
            for key, value in values.items():
                setattr(found, key, value)
            found.since = self.now()

    def configure_graph(
        self, src: str, *, outcome: str = "completed", message: str = "", duration: float | None = None
    ) -> None:
        """Runs of ``src`` end ``outcome`` (completed or dead) with ``message`` after ``duration``."""
        if outcome not in ("completed", "dead", "running"):
            raise ValueError("outcome must be completed, dead or running (never ends)")
        with self.lock:
            self.graph_outcomes[src] = {"outcome": outcome, "message": message, "duration": duration}

    # -- change requests -------------------------------------------------------------------------

    def request_change(self, name: str, request_type: str, tasks: list[str] | None) -> ChangeRequest:
        with self.lock:
            flow = self.flow(name)
            self.advance(flow)
            if request_type not in REQUEST_TYPES:
                raise DataIntelligenceError(
                    400, f"Invalid requestType '{request_type}'; expected one of {', '.join(REQUEST_TYPES)}"
                )
            if request_type in (RUN_SELECTIVE, SUSPEND_SELECTIVE):
                if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
                    raise DataIntelligenceError(400, f"{request_type} needs a JSON array of task names as body")
                unknown = [t for t in tasks if t not in flow.tasks]
                if unknown:
                    raise DataIntelligenceError(400, f"Unknown task(s) {', '.join(unknown)} in flow '{name}'")
            else:
                tasks = None
            current = flow.change_request
            if current is not None and current.completed_at is None:
                raise DataIntelligenceError(
                    409, f"A change request on replication flow '{name}' is still being processed"
                )
            request = ChangeRequest(request_type, tasks, self.now())
            if flow.fail_next:
                request.error_objects, flow.fail_next = flow.fail_next, None
            flow.change_request = request
            flow.changed_at = request.requested_at
            self.change_requests += 1
            self.context.stats.record_task_started(f"sap_data_intelligence:change_request:{name}")
            return request

    def request_status(self, request: ChangeRequest) -> str:
        if request.completed_at is not None:
            return "ERROR" if request.error_objects else "COMPLETED"
        stage = int((self.now() - request.requested_at) / max(self.scaled(self.config.change_request_step), 1e-6))
        return CR_STAGES[min(stage, len(CR_STAGES) - 1)]

    def change_request_doc(self, name: str) -> dict[str, Any]:
        with self.lock:
            flow = self.flow(name)
            self.advance(flow)
            request = flow.change_request
            if request is None:
                raise DataIntelligenceError(404, f"No change request for replication flow '{name}'")
            status = self.request_status(request)
            objects = [
                {"name": f"{name}_src", "type": "SOURCE_SPACE", "status": "VALIDATED"},
                {"name": f"{name}_tgt", "type": "TARGET_SPACE", "status": "VALIDATED"},
                {"name": name, "type": "CONSTELLATION", "status": "VALIDATED"},
            ]
            if status == "ERROR":
                objects += request.error_objects
            doc: dict[str, Any] = {
                "requestType": request.request_type,
                "status": status,
                "requestedAt": self.utc(request.requested_at),
                "newObjects": objects,
            }
            if request.completed_at is not None:
                doc["requestCompletedAt"] = self.utc(request.completed_at)
            return doc

    # -- time ------------------------------------------------------------------------------------

    def advance(self, flow: Flow) -> None:
        """Bring the flow's change request and tasks up to now (lazily, in time order)."""
        now = self.now()
        request = flow.change_request
        if request is not None and request.completed_at is None:
            done_at = request.requested_at + 3 * self.scaled(self.config.change_request_step)
            if now >= done_at:
                request.completed_at = done_at
                if not request.error_objects:
                    self._apply(flow, request, done_at)
        for task in flow.tasks.values():
            self._advance_task(task, now)

    def _apply(self, flow: Flow, request: ChangeRequest, at: float) -> None:
        selected = [flow.tasks[t] for t in request.tasks] if request.tasks else list(flow.tasks.values())
        run = request.request_type in (RUN_ALL, RUN_SELECTIVE)
        for task in selected:
            self._advance_task(task, at)
            if run and not task.active and task.status != "COMPLETED":
                task.status = "DELTA_RUNNING" if task.initial_load_end is not None else "INITIAL_RUNNING"
                task.active, task.since, task.status_info = True, at, ""
                task.retry_count, task.retry_reason = 0, None
                if task.start_time is None:
                    task.start_time = at
                    task.partitions = 4
            elif not run and task.active:
                task.status, task.since = "SUSPENDING", at

    def _advance_task(self, task: Task, now: float) -> None:
        cfg = self.config
        while True:
            if task.status == "INITIAL_RUNNING":
                end = task.since + self.scaled(cfg.initial_load)
                if now < end:
                    task.records = int((now - task.since) / max(self.context.time_scale, 1e-6) * cfg.records_per_second)
                    return
                if task.error is not None:
                    task.status, task.since = "RETRYING", end
                    task.retry_reason = task.error.reason
                    task.status_info = f"Retrying due to {task.error.reason.lower().replace('_', ' ')}."
                    continue
                task.records = int(cfg.initial_load * cfg.records_per_second)
                task.initial_load_end = end
                task.status = "COMPLETED" if task.load_type == "INITIAL" else "DELTA_RUNNING"
                task.active = task.status == "DELTA_RUNNING"
                task.since = end
                continue
            if task.status == "RETRYING":
                assert task.error is not None
                step = self.scaled(cfg.retry_interval)
                rounds = int((now - task.since) / max(step, 1e-6))
                limit = task.error.retries
                if limit is None or rounds < limit:
                    task.retry_count = rounds + 1
                    return
                task.retry_count = limit
                task.status, task.active, task.since = "ERROR", False, task.since + limit * step
                task.status_info = task.error.message
                task.error = None  # a restart runs cleanly
                return
            if task.status == "SUSPENDING":
                end = task.since + self.scaled(cfg.suspend)
                if now < end:
                    return
                task.status, task.active, task.since = "SUSPENDED", False, end
                continue
            if task.status == "DELTA_RUNNING":
                task.records = max(task.records, int(cfg.initial_load * cfg.records_per_second))
            return

    # -- documents -------------------------------------------------------------------------------

    def definition(self, name: str) -> dict[str, Any]:
        with self.lock:
            flow = self.flow(name)
            return {
                "name": name,
                "description": "",
                "version": "ONE_SOURCE_ONE_TARGET",
                "sourceSpaces": [
                    {
                        "name": f"{name}_src",
                        "connectionId": flow.source_connection,
                        "connectionType": "ABAP",
                        "container": "/CDS_EXTRACTION",
                    }
                ],
                "targetSpaces": [
                    {
                        "name": f"{name}_tgt",
                        "connectionId": flow.target_connection,
                        "connectionType": "HANA_DB",
                        "container": "/SCHEMA",
                    }
                ],
                "oneSourceOneTargetTasks": [
                    {
                        "name": t.name,
                        "sourceDataset": t.source,
                        "sourceSpace": f"{name}_src",
                        "targetDataset": t.target,
                        "targetSpace": f"{name}_tgt",
                        "filter": [],
                        "mappings": [],
                        "loadType": t.load_type,
                        "truncate": False,
                    }
                    for t in flow.tasks.values()
                ],
            }

    def configuration(self, name: str) -> dict[str, Any]:
        with self.lock:
            flow = self.flow(name)
            return {
                "name": name,
                "priority": "MEDIUM",
                "spaces": {f"{name}_src": {"maxConnections": 10}, f"{name}_tgt": {"maxConnections": 10}},
                "tasks": [{"name": t.name, "loadType": t.load_type} for t in flow.tasks.values()],
            }

    def flow_status(self, flow: Flow) -> str | None:
        statuses = {t.status for t in flow.tasks.values()}
        if statuses == {"CREATED"}:
            return None  # never run: DI leaves the status out
        if any(t.active for t in flow.tasks.values()):
            return "RUNNING"  # even with a task in ERROR
        return "SUSPENDED" if "SUSPENDED" in statuses else "CREATED"

    def flow_list(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = []
            for flow in self.flows.values():
                self.advance(flow)
                row: dict[str, Any] = {
                    "name": flow.name,
                    "source": flow.source_connection,
                    "target": flow.target_connection,
                    "changedAt": self.local(flow.changed_at),
                    "changedBy": f"{TENANT}\\{USER}",
                }
                status = self.flow_status(flow)
                if status:
                    row["status"] = status
                rows.append(row)
            return rows

    def monitors(self, name: str | None) -> list[dict[str, Any]]:
        with self.lock:
            rows = []
            for flow in self.flows.values():
                if name is not None and flow.name != name:
                    continue
                self.advance(flow)
                metrics: dict[str, int] = {}
                for task in flow.tasks.values():
                    key = METRIC_KEYS[task.status]
                    metrics[key] = metrics.get(key, 0) + 1
                    if task.initial_load_end is not None:
                        metrics["initialCompleted"] = metrics.get("initialCompleted", 0) + 1
                metrics["total"] = len(flow.tasks)
                row: dict[str, Any] = {
                    "name": flow.name,
                    "sourceSpaces": [
                        {
                            "name": f"{flow.name}_src",
                            "connectionId": flow.source_connection,
                            "connectionType": "ABAP",
                            "container": "/CDS_EXTRACTION",
                        }
                    ],
                    "targetSpaces": [
                        {
                            "name": f"{flow.name}_tgt",
                            "connectionId": flow.target_connection,
                            "connectionType": "HANA_DB",
                            "container": "/SCHEMA",
                        }
                    ],
                    "taskMetrics": metrics,
                    "objectChangedAt": self.local(flow.changed_at),
                }
                status = self.flow_status(flow)
                if status:
                    row["status"] = status
                rows.append(row)
            return rows

    def task_monitors(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            flow = self.flow(name)
            self.advance(flow)
            return [self._task_doc(flow, task) for task in flow.tasks.values()]

    def _task_doc(self, flow: Flow, task: Task) -> dict[str, Any]:
        state = {
            "CREATED": "Created",
            "INITIAL_RUNNING": "Transferring initial load",
            "DELTA_RUNNING": "Transferring delta load",
            "SUSPENDING": "Suspending",
            "SUSPENDED": "Suspended",
            "RETRYING": "Retrying",
            "COMPLETED": "Completed",
            "ERROR": "Error",
        }[task.status]
        doc: dict[str, Any] = {
            "name": task.name,
            "flowName": flow.name,
            "sourceDataset": task.source,
            "targetDataset": task.target,
            "priority": "MEDIUM",
            "loadType": task.load_type,
            "status": task.status,
            "state": state,
            "active": task.active,
            "statusInfo": task.status_info,
            "lastRuntimeUpdated": self.local(task.since),
        }
        # Sparse like the service: counters and times appear only once they mean something.
        if task.records:
            doc["numberOfRecordsTransferred"] = task.records
        if task.start_time is not None:
            doc["startTime"] = self.local(task.start_time)
        if task.initial_load_end is not None:
            doc["initialLoadEndTime"] = self.local(task.initial_load_end)
        if task.partitions and task.status != "ERROR":  # setup errors have no partitions
            doc["numberOfPartitions"] = task.partitions
            retrying = task.status == "RETRYING"
            doc["partitions"] = {
                f"P{index:04X}": {
                    "transferMode": "INITIAL" if task.initial_load_end is None else "DELTA",
                    "status": "Transferring" if task.active else "Complete",
                    "statusInfo": task.status_info if retrying else "",
                    "retrying": retrying,
                    **({"retryInfo": {"retryReason": task.retry_reason}} if retrying else {}),
                    "partitionMetrics": {"retryCount": task.retry_count, "errorCount": 0}
                    if task.retry_count
                    else {"errorCount": 0},
                }
                for index in range(task.partitions)
            }
        if task.retry_count:
            doc["initialLoadMetrics"] = {"retryCount": task.retry_count}
        return doc

    # -- graphs ----------------------------------------------------------------------------------

    def start_graph(self, src: str, name: str, substitutions: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            plan = self.graph_outcomes.get(src, {})
            duration = plan.get("duration")
            graph = Graph(
                handle=uuid.uuid4().hex,
                src=src,
                name=name or src,
                substitutions=substitutions,
                submitted=self.now(),
                outcome=plan.get("outcome", "completed"),
                message=plan.get("message", ""),
                duration=self.config.graph_duration if duration is None else float(duration),
            )
            self.graphs[graph.handle] = graph
            self.graph_starts += 1
            self.context.stats.record_task_started(f"sap_data_intelligence:graph:{src}")
            return self.graph_doc(graph.handle)

    def graph(self, handle: str) -> Graph:
        graph = self.graphs.get(handle)
        if graph is None:
            raise DataIntelligenceError(404, f"Graph with handle '{handle}' not found")
        return graph

    def stop_graph(self, handle: str) -> None:
        with self.lock:
            graph = self.graph(handle)
            if self._graph_state(graph)[0] in ("pending", "running"):
                graph.stopped_at = self.now()
                self.graph_stops += 1

    def _graph_state(self, graph: Graph) -> tuple[str, float, float, float]:
        """(status, started, running, stopped) as epoch seconds, 0 meaning unset."""
        now = self.now()
        started = graph.submitted + self.scaled(0.5)
        end = started + self.scaled(graph.duration)
        if graph.stopped_at is not None:
            if now < graph.stopped_at + self.scaled(0.5):
                return "stopping", started if now >= started else 0, started, 0
            return "dead", started, started, graph.stopped_at + self.scaled(0.5)
        if now < started:
            return "pending", 0, 0, 0
        if graph.outcome == "running" or now < end:
            return "running", started, started, 0
        return graph.outcome, started, started, end

    def graph_doc(self, handle: str) -> dict[str, Any]:
        with self.lock:
            graph = self.graph(handle)
            status, started, running, stopped = self._graph_state(graph)
            message = ""
            if status == "dead":
                message = (
                    "Graph stopped by user"
                    if graph.stopped_at is not None
                    else (graph.message or "Error in operator 'python3': ValueError: boom")
                )
            return {
                "handle": graph.handle,
                "src": graph.src,
                "name": graph.name,
                "user": USER,
                "tenant": TENANT,
                "executionType": "",
                "status": status,
                "message": message,
                "submitted": int(graph.submitted),
                "started": int(started),
                "running": int(running),
                "updated": int(self.now()),
                "stopped": int(stopped),
                "configurationSubstitutions": graph.substitutions,
                "autoRestartInfo": {},
            }

    def graph_list(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.graph_doc(handle) for handle in self.graphs]
