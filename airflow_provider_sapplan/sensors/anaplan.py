"""Wait on an Anaplan task started elsewhere (poke or deferrable)."""

from __future__ import annotations

from typing import Any

from airflow_provider_sapplan.core.sensor import RemoteJobSensor
from airflow_provider_sapplan.hooks.anaplan import ActionType, AnaplanHook
from airflow_provider_sapplan.jobs.anaplan import AnaplanTaskStatusMixin, task_summary
from airflow_provider_sapplan.triggers.anaplan import AnaplanTaskTrigger


class AnaplanTaskSensor(AnaplanTaskStatusMixin, RemoteJobSensor):
    """Succeeds when the Anaplan task succeeds; fails (with dump rows logged) when it fails.

    Give exactly one of ``import_id``, ``export_id``, ``process_id`` or ``action_id``, and ``task_id``.
    """

    trigger_class = AnaplanTaskTrigger

    template_fields = (
        "import_id",
        "export_id",
        "process_id",
        "action_id",
        "anaplan_task_id",
        "workspace_id",
        "model_id",
    )

    def __init__(
        self,
        *,
        task_id: str,
        anaplan_task_id: str | None = None,
        import_id: str | None = None,
        export_id: str | None = None,
        process_id: str | None = None,
        action_id: str | None = None,
        anaplan_conn_id: str = AnaplanHook.default_conn_name,
        workspace_id: str | None = None,
        model_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id=task_id, **kwargs)
        given = {
            ActionType.IMPORT: import_id,
            ActionType.EXPORT: export_id,
            ActionType.PROCESS: process_id,
            ActionType.ACTION: action_id,
        }
        chosen = [(kind, value) for kind, value in given.items() if value]
        if len(chosen) != 1:
            raise ValueError("Give exactly one of import_id, export_id, process_id or action_id.")
        if not anaplan_task_id:
            raise ValueError("anaplan_task_id (the Anaplan task to wait on) is required.")
        self.action_type, self.anaplan_action_id = chosen[0][0].value, chosen[0][1]
        self.import_id, self.export_id, self.process_id, self.action_id = (
            import_id,
            export_id,
            process_id,
            action_id,
        )
        self.anaplan_task_id = anaplan_task_id
        self.anaplan_conn_id = anaplan_conn_id
        self.workspace_id = workspace_id
        self.model_id = model_id

    def job_ref(self) -> dict[str, Any]:
        action_id = next(v for v in (self.import_id, self.export_id, self.process_id, self.action_id) if v)
        return {
            "workspace_id": self.workspace_id,
            "model_id": self.model_id,
            "action_type": self.action_type,
            "action_id": str(action_id),
            "task_id": str(self.anaplan_task_id),
        }

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        return task_summary(ref, status)
