"""Wait on SAP Data Intelligence work started elsewhere: a replication flow's tasks, a graph run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from airflow_provider_sapplan.core.sensor import RemoteJobSensor
from airflow_provider_sapplan.core.waiting import seconds
from airflow_provider_sapplan.hooks.sap_data_intelligence import SapDataIntelligenceHook
from airflow_provider_sapplan.jobs.sap_data_intelligence import (
    PHASE_TASKS,
    TARGET_STATES,
    FlowWaitMixin,
    GraphStatusMixin,
    check_target_state,
)
from airflow_provider_sapplan.triggers.sap_data_intelligence import (
    SapDataIntelligenceChangeRequestTrigger,
    SapDataIntelligenceFlowTrigger,
    SapDataIntelligenceGraphTrigger,
)


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


class SapDataIntelligenceFlowSensor(FlowWaitMixin, RemoteJobSensor):
    """Succeeds when every selected task of ``flow_name`` reaches ``target_state``.

    :param flow_name: the replication flow.
    :param target_state: ``"initial_load_complete"`` (every task COMPLETED, or DELTA_RUNNING with an
        initial-load end time), ``"delta_running"`` or ``"suspended"``.
    :param tasks: the task names to watch (validated against the flow first); all when None.
    :param max_retrying: fail when a task stays RETRYING this long (seconds or timedelta).
    Any watched task in ERROR fails the sensor with its ``statusInfo``; the flow's own status is
    never trusted (it shows RUNNING with tasks in ERROR). Returns per-task results.
    """

    template_fields: ClassVar[tuple[str, ...]] = ("flow_name", "tasks", "target_state")
    trigger_class = SapDataIntelligenceFlowTrigger
    change_request_trigger_class = SapDataIntelligenceChangeRequestTrigger

    def __init__(
        self,
        *,
        flow_name: str,
        target_state: str,
        tasks: list[str] | None = None,
        max_retrying: float | timedelta | None = None,
        sap_data_intelligence_conn_id: str = SapDataIntelligenceHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flow_name = flow_name
        self.target_state = target_state
        self.tasks = tasks
        self.max_retrying = seconds(max_retrying)
        self.sap_data_intelligence_conn_id = sap_data_intelligence_conn_id
        if self.max_retrying is not None and self.max_retrying <= 0:
            raise ValueError("max_retrying must be a positive duration (seconds or timedelta), or None.")
        self._check_arguments()
        self._validated = False

    def _check_arguments(self) -> None:
        if not _templated(self.flow_name) and (not isinstance(self.flow_name, str) or not self.flow_name.strip()):
            raise ValueError("flow_name must be the replication flow's name, e.g. 'RF_SALES'.")
        if not _templated(self.target_state):
            check_target_state(self.target_state, TARGET_STATES)
        tasks = self.tasks
        if (
            tasks is not None
            and not _templated(tasks)
            and (isinstance(tasks, str) or not tasks or not all(isinstance(t, str) and t for t in tasks))
        ):
            raise ValueError("tasks must be a non-empty list of task names, e.g. ['VBAK'] (or None for all).")

    def job_ref(self) -> dict[str, Any]:
        return {
            "flow": self.flow_name,
            "phase": PHASE_TASKS,
            "tasks": list(self.tasks) if self.tasks else None,
            "target_state": self.target_state,
            "max_retrying": self.max_retrying,
        }

    def execute(self, context: Any) -> Any:
        self._check_arguments()
        if self.tasks and not self._validated:
            self.hook.validate_task_names(self.flow_name, list(self.tasks))
            self._validated = True
        return super().execute(context)


class SapDataIntelligenceGraphSensor(GraphStatusMixin, RemoteJobSensor):
    """Waits on a graph run by ``handle``: completed succeeds, dead fails with the graph's message."""

    template_fields: ClassVar[tuple[str, ...]] = ("handle",)
    trigger_class = SapDataIntelligenceGraphTrigger

    def __init__(
        self,
        *,
        handle: str,
        sap_data_intelligence_conn_id: str = SapDataIntelligenceHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.handle = handle
        self.sap_data_intelligence_conn_id = sap_data_intelligence_conn_id
        if not _templated(handle) and (not isinstance(handle, str) or not handle.strip()):
            raise ValueError("handle must be the graph run's handle (the RunGraph operator's XCom 'handle').")

    def job_ref(self) -> dict[str, Any]:
        return {"handle": str(self.handle)}
