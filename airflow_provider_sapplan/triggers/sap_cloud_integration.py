"""Deferrable waits on SAP Cloud Integration deploys (and undeploys) and on messages."""

from __future__ import annotations

from typing import Any

from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.trigger import RemoteJobTrigger
from airflow_provider_sapplan.hooks.sap_cloud_integration import SapCloudIntegrationHook
from airflow_provider_sapplan.jobs.sap_cloud_integration import (
    afetch_deploy,
    afetch_message,
    deploy_outcome,
    message_outcome,
    raw_deploy_state,
    raw_message_state,
)


class SapCloudIntegrationDeployTrigger(RemoteJobTrigger):
    """Polls a deploy: ``BuildAndDeployStatus`` until it leaves DEPLOYING, then the runtime artifact.

    ``ref`` holds ``artifact_id``, ``task_id``, ``started_at`` and ``grace_seconds`` (how long a 404
    of the runtime artifact means "not there yet"); with ``mode: "undeploy"`` it waits until the
    runtime artifact is gone. CPI cannot cancel a deploy, so ``on_kill`` only logs.
    """

    def make_hook(self) -> SapCloudIntegrationHook:
        return SapCloudIntegrationHook(self.conn_id)

    async def fetch(self, hook: SapCloudIntegrationHook) -> dict[str, Any]:
        return await afetch_deploy(hook, self.ref)

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return deploy_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return raw_deploy_state(status)

    async def cancel(self, hook: SapCloudIntegrationHook) -> None:
        self.log.info("SAP Cloud Integration cannot cancel a deploy in progress; %s continues.", self.ref)


class SapCloudIntegrationMessageTrigger(RemoteJobTrigger):
    """Polls a message processing log until COMPLETED, FAILED, ESCALATED or CANCELLED.

    ``ref`` holds ``message_guid`` (and ``called_at``/``grace_seconds`` for a message that is not
    written yet), or ``artifact_id``/``correlation_id``/``started_after`` to follow the newest
    match; ``fail_on_retry`` makes RETRY and ABANDONED fail. DISCARDED messages are followed to the
    restart with the same correlation id. CPI cannot cancel a message, so ``on_kill`` only logs.
    """

    def make_hook(self) -> SapCloudIntegrationHook:
        return SapCloudIntegrationHook(self.conn_id)

    async def fetch(self, hook: SapCloudIntegrationHook) -> dict[str, Any]:
        return await afetch_message(hook, self.ref)

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return message_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return raw_message_state(status)

    async def cancel(self, hook: SapCloudIntegrationHook) -> None:
        self.log.info("SAP Cloud Integration cannot cancel a message; %s keeps processing.", self.ref)
