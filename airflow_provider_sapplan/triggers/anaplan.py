"""Deferrable wait on an Anaplan task (import, export, process or action)."""

from __future__ import annotations

from typing import Any

from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.trigger import RemoteJobTrigger
from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
from airflow_provider_sapplan.jobs.anaplan import task_outcome


class AnaplanTaskTrigger(RemoteJobTrigger):
    """Polls an Anaplan task until COMPLETE or CANCELLED, or until the deadline.

    ``ref`` holds ``workspace_id``, ``model_id``, ``action_type``, ``action_id`` and ``task_id``.
    The event carries those ids, ``raw_state`` (Anaplan's ``taskState``) and the task document.
    """

    def make_hook(self) -> AnaplanHook:
        return AnaplanHook(self.conn_id, workspace_id=self.ref.get("workspace_id"), model_id=self.ref.get("model_id"))

    async def fetch(self, hook: AnaplanHook) -> dict[str, Any]:
        return await hook.aget_task(self.ref["action_type"], self.ref["action_id"], self.ref["task_id"])

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return task_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return str(status.get("taskState"))

    async def cancel(self, hook: AnaplanHook) -> None:
        await hook.acancel_task(self.ref["action_type"], self.ref["action_id"], self.ref["task_id"])
