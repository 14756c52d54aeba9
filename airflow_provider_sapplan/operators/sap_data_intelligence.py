"""SAP Data Intelligence operators: start, stop and restart replication flows; run pipelines.

A flow write is a *change request*: DI answers 202 and works on it asynchronously. The flow
operators wait in phases through the core's multi-phase wait (:meth:`RemoteJobOperator.next_ref`):
first the change request (only a status requested at or after our PUT counts), then, when a target
state is asked for, the selected tasks. Task health always comes from the tasks themselves.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, ClassVar

from airflow_provider_sapplan._compat import BaseOperatorLink
from airflow_provider_sapplan.core.links import XComUrlLink
from airflow_provider_sapplan.core.operator import RemoteJobOperator
from airflow_provider_sapplan.core.waiting import seconds
from airflow_provider_sapplan.hooks.sap_data_intelligence import (
    RUN_ALL,
    SELECTIVE,
    SUSPEND_ALL,
    SapDataIntelligenceHook,
)
from airflow_provider_sapplan.jobs.sap_data_intelligence import (
    DEFAULT_CLOCK_SKEW,
    PHASE_CHANGE_REQUEST,
    PHASE_TASKS,
    SUSPENDED,
    TARGET_STATES,
    FlowWaitMixin,
    GraphStatusMixin,
    check_target_state,
    task_metrics,
    task_summary,
)
from airflow_provider_sapplan.triggers.sap_data_intelligence import (
    SapDataIntelligenceChangeRequestTrigger,
    SapDataIntelligenceFlowTrigger,
    SapDataIntelligenceGraphTrigger,
)

FLOW_URL_XCOM_KEY = "sap_data_intelligence_flow_url"
GRAPH_URL_XCOM_KEY = "sap_data_intelligence_graph_url"
RUNNING_TARGETS = ("initial_load_complete", "delta_running")


class SapDataIntelligenceFlowLink(XComUrlLink):
    """Opens the replication flow in the DI monitor."""

    name = "DI replication flow"
    xcom_key = FLOW_URL_XCOM_KEY


class SapDataIntelligenceGraphLink(XComUrlLink):
    """Opens the graph run in the DI Pipeline Modeler."""

    name = "DI pipeline run"
    xcom_key = GRAPH_URL_XCOM_KEY


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _push(context: Any, key: str, value: str) -> None:
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is not None:
        ti.xcom_push(key=key, value=value)


class _FlowOperator(FlowWaitMixin, RemoteJobOperator):
    """Shared by the flow operators: the flow, its selected tasks and the phased wait.

    :param flow_name: the replication flow (case-sensitive).
    :param tasks: task names to act on (validated against the flow before any write); all when None.
    :param max_retrying: fail when a selected task stays RETRYING this long (seconds or timedelta);
        None waits as long as DI retries (it can retry DATA_NOT_READY forever).
    :param clock_skew: seconds of clock difference tolerated between this worker and DI when telling
        our change request from someone else's.
    """

    template_fields: ClassVar[tuple[str, ...]] = ("flow_name", "tasks", "target_state")
    operator_extra_links: ClassVar[tuple[BaseOperatorLink, ...]] = (SapDataIntelligenceFlowLink(),)
    trigger_class = SapDataIntelligenceFlowTrigger
    change_request_trigger_class = SapDataIntelligenceChangeRequestTrigger
    xcom_ref_key = "sap_data_intelligence_flow"
    external_id_key = "sap_data_intelligence_flow"
    allowed_targets: ClassVar[tuple[str, ...]] = TARGET_STATES
    request_type: ClassVar[str] = RUN_ALL

    def __init__(
        self,
        *,
        flow_name: str,
        tasks: list[str] | None = None,
        target_state: str | None = None,
        max_retrying: float | timedelta | None = None,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        cancel_on_kill: bool = False,
        sap_data_intelligence_conn_id: str = SapDataIntelligenceHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(cancel_on_kill=cancel_on_kill, **kwargs)
        self.flow_name = flow_name
        self.tasks = tasks
        self.target_state = target_state
        self.max_retrying = seconds(max_retrying)
        self.clock_skew = float(clock_skew)
        self.sap_data_intelligence_conn_id = sap_data_intelligence_conn_id
        if self.max_retrying is not None and self.max_retrying <= 0:
            raise ValueError("max_retrying must be a positive duration (seconds or timedelta), or None.")
        if self.clock_skew < 0:
            raise ValueError("clock_skew must be zero or more seconds.")
        self._check_arguments()

    def _check_arguments(self) -> None:
        """Validate (again after rendering): flow name, task list, target state."""
        if not _templated(self.flow_name) and (not isinstance(self.flow_name, str) or not self.flow_name.strip()):
            raise ValueError("flow_name must be the replication flow's name, e.g. 'RF_SALES'.")
        if self.tasks is not None and not _templated(self.tasks):
            if isinstance(self.tasks, str) or not all(isinstance(t, str) and t for t in self.tasks):
                raise ValueError("tasks must be a list of task names, e.g. ['VBAK', 'VBAP'] (or None for all).")
            if not self.tasks:
                raise ValueError("tasks is empty: give at least one task name, or None for every task.")
        if not _templated(self.target_state):
            check_target_state(self.target_state, self.allowed_targets, optional=True)

    # -- phases --------------------------------------------------------------------------------------

    def _selected(self) -> list[str] | None:
        return list(self.tasks) if self.tasks else None

    def _change(self, request_type: str, tasks: list[str] | None, step: str = "") -> dict[str, Any]:
        """Send one change request and return its wait reference (when we asked, when DI answered)."""
        kind = SELECTIVE[request_type] if tasks else request_type
        requested_at = time.time()
        answer = self.hook.request_change(self.flow_name, kind, tasks)
        acknowledged_at = time.time()
        self.log.info("Sent %s for replication flow %s%s.", kind, self.flow_name, f" tasks {tasks}" if tasks else "")
        ref: dict[str, Any] = {
            "flow": self.flow_name,
            "phase": PHASE_CHANGE_REQUEST,
            "request_type": kind,
            "tasks": tasks,
            "requested_at": requested_at,
            "acknowledged_at": acknowledged_at,
            "clock_skew": self.clock_skew,
            "url": answer.get("url"),
            "deadline": self._deadline,
        }
        if step:
            ref["step"] = step
        return ref

    def _tasks_ref(self, target: str, tasks: list[str] | None, step: str = "") -> dict[str, Any]:
        ref: dict[str, Any] = {
            "flow": self.flow_name,
            "phase": PHASE_TASKS,
            "tasks": tasks,
            "target_state": target,
            "max_retrying": self.max_retrying,
            "deadline": self._deadline,
        }
        if step:
            ref["step"] = step
        return ref

    def submit(self, context: Any) -> dict[str, Any]:
        self._check_arguments()
        tasks = self._selected()
        if tasks:
            self.hook.validate_task_names(self.flow_name, tasks)
        _push(context, FLOW_URL_XCOM_KEY, self.hook.flow_monitor_url(self.flow_name))
        return self._change(self.request_type, tasks)

    def next_ref(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any] | None:
        if ref.get("phase") == PHASE_CHANGE_REQUEST and self.target_state:
            return self._tasks_ref(self.target_state, ref.get("tasks"))
        return None

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        result: dict[str, Any] = {"flow": ref["flow"], "phase": ref.get("phase"), "state": status.get("state")}
        if ref.get("phase") == PHASE_TASKS:
            result.update(target_state=status.get("target_state"), tasks=status.get("tasks", []))
        else:
            result["change_request"] = status.get("change_request")
            selected = set(ref.get("tasks") or [])
            result["tasks"] = [
                task_summary(task, self.hook.timezone)
                for task in self.hook.task_monitors(ref["flow"])
                if not selected or task.get("name") in selected
            ]
        result["records_transferred"] = sum(t.get("records_transferred", 0) for t in result["tasks"])
        result["task_metrics"] = task_metrics(self.hook.flow_monitor(ref["flow"]))
        self.log.info("Replication flow %s: %s", ref["flow"], status.get("message"))
        return result

    def cancel(self, ref: dict[str, Any]) -> None:
        """Change requests cannot be withdrawn; with ``cancel_on_kill`` the selected tasks are suspended."""
        self.hook.request_change(
            self.flow_name, SELECTIVE[SUSPEND_ALL] if ref.get("tasks") else SUSPEND_ALL, ref.get("tasks")
        )


class SapDataIntelligenceStartFlowOperator(_FlowOperator):
    """Run or resume the inactive tasks of a replication flow (all, or ``tasks``) and wait.

    Waits for the change request (``RUN_OR_RESUME_ALL_INACTIVE_TASKS``, or the selective one) to be
    COMPLETED; then, with ``target_state`` (``"initial_load_complete"`` or ``"delta_running"``), for
    every selected task to reach it. Any selected task in ERROR fails with its ``statusInfo``.
    Returns the flow, the change request or target state, and per-task status, records transferred,
    partitions and initial-load end time (UTC). ``cancel_on_kill=True`` suspends the tasks on kill.
    """

    allowed_targets = RUNNING_TARGETS
    request_type = RUN_ALL


class SapDataIntelligenceStopFlowOperator(_FlowOperator):
    """Suspend the active tasks of a replication flow (all, or ``tasks``) and wait until they are suspended."""

    allowed_targets = (SUSPENDED,)
    request_type = SUSPEND_ALL

    def __init__(self, *, target_state: str | None = SUSPENDED, **kwargs: Any) -> None:
        super().__init__(target_state=target_state, **kwargs)

    def cancel(self, ref: dict[str, Any]) -> None:
        return None  # never resume what the user asked to stop


class SapDataIntelligenceRestartFlowOperator(_FlowOperator):
    """Suspend, then resume, a replication flow (or its ``tasks``); DI has no restart request.

    :param only_failed: restart just the selected tasks that are in ERROR and no longer active (the
        only tasks DI can restart without a suspend); nothing is sent when there are none.
    :param target_state: after resuming, also wait for ``"initial_load_complete"`` or ``"delta_running"``.
    """

    allowed_targets = RUNNING_TARGETS

    def __init__(self, *, only_failed: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.only_failed = bool(only_failed)

    def execute(self, context: Any) -> Any:
        self._check_arguments()
        if self.only_failed:
            failed = self._failed_tasks()
            if not failed:
                self.log.info(
                    "Replication flow %s has no task in ERROR that is inactive; nothing to restart.", self.flow_name
                )
                return {"flow": self.flow_name, "restarted": [], "tasks": []}
            self._failed = failed
        return super().execute(context)

    def _failed_tasks(self) -> list[str]:
        selected = set(self._selected() or [])
        if selected:
            self.hook.validate_task_names(self.flow_name, sorted(selected))
        return [
            str(task.get("name"))
            for task in self.hook.task_monitors(self.flow_name)
            if str(task.get("status", "")).upper() == "ERROR"
            and task.get("active") is False
            and (not selected or task.get("name") in selected)
        ]

    def submit(self, context: Any) -> dict[str, Any]:
        _push(context, FLOW_URL_XCOM_KEY, self.hook.flow_monitor_url(self.flow_name))
        if self.only_failed:
            failed = self.__dict__.get("_failed") or self._failed_tasks()
            return self._change(RUN_ALL, failed, step="resume")
        tasks = self._selected()
        if tasks:
            self.hook.validate_task_names(self.flow_name, tasks)
        return self._change(SUSPEND_ALL, tasks, step="suspend")

    def next_ref(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any] | None:
        step, phase, tasks = ref.get("step"), ref.get("phase"), ref.get("tasks")
        if step == "suspend" and phase == PHASE_CHANGE_REQUEST:
            return self._tasks_ref(SUSPENDED, tasks, step="suspend")
        if step == "suspend" and phase == PHASE_TASKS:
            return self._change(RUN_ALL, tasks, step="resume")
        if step == "resume" and phase == PHASE_CHANGE_REQUEST and self.target_state:
            return self._tasks_ref(self.target_state, tasks, step="resume")
        return None

    def cancel(self, ref: dict[str, Any]) -> None:
        return None  # a half-done restart is left for the user to see, not undone


class SapDataIntelligenceRunGraphOperator(GraphStatusMixin, RemoteJobOperator):
    """Start pipeline ``graph`` and wait for the run; ``on_kill`` (and a timed-out wait) stops it.

    :param graph: the graph's name (``src``), e.g. ``com.example.load_sales``.
    :param configuration_substitutions: values for the graph's ``${...}`` parameters.
    :param name: optional run name shown in the Modeler.
    :param trace_level: optional trace level (``INFO``, ``DEBUG``...).
    Returns the run with ``submitted``/``started``/``stopped`` as UTC ISO strings; a dead run
    fails with the graph's message.
    """

    template_fields = ("graph", "configuration_substitutions", "name")
    template_fields_renderers: ClassVar[dict[str, str]] = {"configuration_substitutions": "json"}
    operator_extra_links: ClassVar[tuple[BaseOperatorLink, ...]] = (SapDataIntelligenceGraphLink(),)
    trigger_class = SapDataIntelligenceGraphTrigger
    xcom_ref_key = "sap_data_intelligence_graph"
    external_id_key = "sap_data_intelligence_graph"

    def __init__(
        self,
        *,
        graph: str,
        configuration_substitutions: dict[str, Any] | None = None,
        name: str | None = None,
        trace_level: str | None = None,
        sap_data_intelligence_conn_id: str = SapDataIntelligenceHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.graph = graph
        self.configuration_substitutions = configuration_substitutions
        self.name = name
        self.trace_level = trace_level
        self.sap_data_intelligence_conn_id = sap_data_intelligence_conn_id
        self._check_arguments()

    def _check_arguments(self) -> None:
        if not _templated(self.graph) and (not isinstance(self.graph, str) or not self.graph.strip()):
            raise ValueError("graph must be the pipeline's name (src), e.g. 'com.example.load_sales'.")
        subs = self.configuration_substitutions
        if (
            subs is not None
            and not _templated(subs)
            and (not isinstance(subs, dict) or not all(isinstance(k, str) for k in subs))
        ):
            raise ValueError("configuration_substitutions must be a dict of parameter name -> value.")
        if self.name is not None and not isinstance(self.name, str):
            raise ValueError("name must be a string (the run name shown in the Modeler).")

    def submit(self, context: Any) -> dict[str, Any]:
        self._check_arguments()
        subs = {k: str(v) for k, v in (self.configuration_substitutions or {}).items()}
        run = self.hook.start_graph(
            self.graph, name=self.name, configuration_substitutions=subs, trace_level=self.trace_level
        )
        handle = run.get("handle")
        if not handle:
            from airflow_provider_sapplan.exceptions import SapplanError

            raise SapplanError(f"DI started graph {self.graph!r} but returned no handle: {run!r}.")
        _push(context, GRAPH_URL_XCOM_KEY, self.hook.graph_url(str(handle)))
        return {"handle": str(handle), "graph": self.graph}

    def cancel(self, ref: dict[str, Any]) -> None:
        self.hook.stop_graph(ref["handle"])

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        result = super().succeeded(ref, status, context)
        self.log.info("Graph %s run %s completed.", self.graph, ref["handle"])
        return result
