"""Wait on an SAP Cloud Integration message started elsewhere (poke or deferrable)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_provider_sapplan.core.odata import datetime_literal
from airflow_provider_sapplan.core.sensor import RemoteJobSensor
from airflow_provider_sapplan.hooks.sap_cloud_integration import SapCloudIntegrationHook
from airflow_provider_sapplan.jobs.sap_cloud_integration import MessageStatusMixin
from airflow_provider_sapplan.triggers.sap_cloud_integration import SapCloudIntegrationMessageTrigger


class SapCloudIntegrationMessageSensor(MessageStatusMixin, RemoteJobSensor):
    """Succeeds when a message is COMPLETED; fails on FAILED, ESCALATED or CANCELLED.

    :param message_guid: the message to wait on; or
    :param artifact_id: wait on the newest message of this iFlow, and/or
    :param correlation_id: the newest message with this correlation id,
    :param started_after: that started after this moment (datetime or ISO-8601 string; default the
        run's data interval start, else its logical date). Sent as a UTC ``datetime'...'`` literal.
    :param fail_on_retry: fail on RETRY and ABANDONED instead of waiting.
    DISCARDED messages are followed to their restart (same correlation id). The sensor never
    cancels anything (CPI cannot cancel a message anyway).
    """

    template_fields = ("message_guid", "artifact_id", "correlation_id", "started_after")
    trigger_class = SapCloudIntegrationMessageTrigger

    def __init__(
        self,
        *,
        message_guid: str | None = None,
        artifact_id: str | None = None,
        correlation_id: str | None = None,
        started_after: datetime | str | None = None,
        fail_on_retry: bool = False,
        sap_cloud_integration_conn_id: str = SapCloudIntegrationHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.message_guid = message_guid
        self.artifact_id = artifact_id
        self.correlation_id = correlation_id
        self.started_after = started_after
        self.fail_on_retry = bool(fail_on_retry)
        self.sap_cloud_integration_conn_id = sap_cloud_integration_conn_id
        self._started_after: str | None = None
        if "{{" not in f"{message_guid}{artifact_id}{correlation_id}{started_after}":
            self._validate()

    def _validate(self) -> None:
        by_guid = self.message_guid not in (None, "")
        by_query = self.artifact_id not in (None, "") or self.correlation_id not in (None, "")
        if by_guid == by_query:
            raise ValueError(
                "Give message_guid, or artifact_id and/or correlation_id (the newest matching message is followed)."
            )
        if self.started_after not in (None, ""):
            datetime_literal(self.started_after)  # raises with an example when it is not a date-time

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        self._validate()

    def execute(self, context: Any) -> Any:
        if self.message_guid in (None, ""):
            moment = self.started_after
            if moment in (None, ""):
                moment = context.get("data_interval_start") or context.get("logical_date")
            self._started_after = _iso(moment)
        return super().execute(context)

    def job_ref(self) -> dict[str, Any]:
        if self.message_guid:
            return {"message_guid": str(self.message_guid), "fail_on_retry": self.fail_on_retry}
        return {
            "artifact_id": self.artifact_id or None,
            "correlation_id": self.correlation_id or None,
            "started_after": self._started_after,
            "fail_on_retry": self.fail_on_retry,
        }

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        return {k: v for k, v in status.items() if k != "fail_on_retry"}


def _iso(moment: Any) -> str | None:
    if moment in (None, ""):
        return None
    if isinstance(moment, datetime):
        return moment.isoformat()
    return str(moment)
