"""What Cloud Integration's deploys and messages MEAN: states, outcomes, summaries, failures.

Imports hooks and core only. Operators and sensors share the mixins at the bottom; triggers use
the same ``*_status`` functions through the hook's async methods, so a wait judges a message or a
deploy identically in the worker and in the triggerer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any, NoReturn

from airflow_provider_sapplan.core import odata
from airflow_provider_sapplan.core.remote_job import RemoteJobMixin
from airflow_provider_sapplan.core.status import Outcome, StatusTable
from airflow_provider_sapplan.exceptions import RemoteJobFailedError
from airflow_provider_sapplan.hooks.sap_cloud_integration import PLATFORM, SapCloudIntegrationHook

DEFAULT_GRACE_SECONDS = 300.0
"""How long a just-deployed artifact or a just-called message may be missing (404) before it fails."""

BUILD_STATES = StatusTable(
    f"{PLATFORM} BuildAndDeployStatus",
    running=("DEPLOYING",),
    succeeded=("SUCCESS",),
    failed=("FAIL", "FAIL_ON_LICENSE_ERROR", "FAILED", "ERROR"),
)
RUNTIME_STATES = StatusTable(
    f"{PLATFORM} runtime artifact",
    running=("STARTING", "STOPPING", "NOT_DEPLOYED_YET", "ERROR_DETAILS_PENDING", "DEPLOYING"),
    succeeded=("STARTED",),
    failed=("ERROR", "NOT_DEPLOYED", "FAIL"),
)
UNDEPLOY_STATES = StatusTable(
    f"{PLATFORM} undeploy", running=("STARTED", "STARTING", "STOPPING", "ERROR"), succeeded=("UNDEPLOYED",)
)
MESSAGE_STATES = StatusTable(
    f"{PLATFORM} message",
    running=("PROCESSING", "RETRY", "ABANDONED", "DISCARDED", "NOT_FOUND_YET"),
    succeeded=("COMPLETED",),
    failed=("FAILED", "ESCALATED", "CANCELLED", "NOT_FOUND"),
)
RETRY_STATES = frozenset({"RETRY", "ABANDONED"})
RECONNECTABLE_STATES = frozenset({"PROCESSING", "RETRY", "COMPLETED"})
"""States of an earlier try's message that a retried task waits on instead of calling the flow again."""


class CloudIntegrationMessageFailedError(RemoteJobFailedError):
    """A message ended FAILED, ESCALATED or CANCELLED (or RETRY/ABANDONED with ``fail_on_retry``)."""


class CloudIntegrationDeployError(RemoteJobFailedError):
    """A deploy failed to build, or the runtime artifact went to ERROR (or never appeared)."""


# -- correlation ids ---------------------------------------------------------------------------


def correlation_base(ti: Any) -> str:
    """A stable id for one task instance (dag, task, run, map index), same on every try."""
    parts = [str(getattr(ti, name, "")) for name in ("dag_id", "task_id", "run_id", "map_index")]
    return "airflow-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def correlation_id(ti: Any, try_number: int) -> str:
    """``SAP_MplCorrelationId`` for one try of a task instance (at most 44 characters)."""
    return f"{correlation_base(ti)}-try{int(try_number)}"


# -- messages --------------------------------------------------------------------------------


def message_summary(message: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a message processing log worth keeping in XCom, with ISO-8601 UTC times."""
    artifact = message.get("IntegrationArtifact") or {}
    start, end = odata.parse_date(message.get("LogStart")), odata.parse_date(message.get("LogEnd"))
    return {
        "MessageGuid": message.get("MessageGuid"),
        "CorrelationId": message.get("CorrelationId"),
        "Status": message.get("Status"),
        "CustomStatus": message.get("CustomStatus"),
        "IntegrationArtifactId": artifact.get("Id") if isinstance(artifact, Mapping) else None,
        "IntegrationFlowName": message.get("IntegrationFlowName"),
        "LogStart": start.isoformat() if start else None,
        "LogEnd": end.isoformat() if end else None,
        "AlternateWebLink": message.get("AlternateWebLink"),
    }


def message_outcome(status: Mapping[str, Any]) -> Outcome:
    raw = str(status.get("Status") or "").upper()
    if raw in RETRY_STATES and status.get("fail_on_retry"):
        return Outcome.FAILED
    return MESSAGE_STATES.outcome(raw)


def raw_message_state(status: Mapping[str, Any]) -> str:
    return str(status.get("Status") or "")


def judge_message(
    ref: Mapping[str, Any], found: Mapping[str, Any] | None, now: float, followed_from: str | None = None
) -> dict[str, Any]:
    """The status document of the message a wait follows (``found`` after DISCARDED following)."""
    base = {"fail_on_retry": bool(ref.get("fail_on_retry"))}
    if found is None:
        called = float(ref.get("called_at") or now)
        grace = float(ref.get("grace_seconds", DEFAULT_GRACE_SECONDS))
        if (ref.get("message_guid") or ref.get("called_at")) and now > called + grace:
            return {**base, "Status": "NOT_FOUND", "MessageGuid": ref.get("message_guid")}
        return {**base, "Status": "NOT_FOUND_YET", "MessageGuid": ref.get("message_guid")}
    summary = message_summary(found)
    if followed_from:
        summary["FollowedFrom"] = followed_from
    return {**base, **summary}


def query_criteria(ref: Mapping[str, Any]) -> dict[str, Any]:
    """Query of a sensor that waits on the newest message of an artifact or correlation id."""
    return {
        "artifact_id": ref.get("artifact_id"),
        "correlation_id": ref.get("correlation_id"),
        "started_after": ref.get("started_after"),
        "top": 1,
    }


def fetch_message(hook: SapCloudIntegrationHook, ref: Mapping[str, Any]) -> dict[str, Any]:
    """Read the message a wait follows: by guid, or the newest match; DISCARDED leads to its restart."""
    if ref.get("message_guid"):
        found = hook.get_message(str(ref["message_guid"]))
    else:
        matches = hook.query_messages(**query_criteria(ref))
        found = matches[0] if matches else None
    followed = None
    if found is not None and str(found.get("Status", "")).upper() == "DISCARDED" and found.get("CorrelationId"):
        newer = hook.query_messages(correlation_id=str(found["CorrelationId"]), top=1)
        if newer:
            followed, found = str(found.get("MessageGuid")), newer[0]
    return judge_message(ref, found, time.time(), followed)


async def afetch_message(hook: SapCloudIntegrationHook, ref: Mapping[str, Any]) -> dict[str, Any]:
    """The async twin of :func:`fetch_message` (triggerer)."""
    if ref.get("message_guid"):
        found = await hook.aget_message(str(ref["message_guid"]))
    else:
        matches = await hook.aquery_messages(**query_criteria(ref))
        found = matches[0] if matches else None
    followed = None
    if found is not None and str(found.get("Status", "")).upper() == "DISCARDED" and found.get("CorrelationId"):
        newer = await hook.aquery_messages(correlation_id=str(found["CorrelationId"]), top=1)
        if newer:
            followed, found = str(found.get("MessageGuid")), newer[0]
    return judge_message(ref, found, time.time(), followed)


def raise_message_failure(hook: SapCloudIntegrationHook, status: Mapping[str, Any]) -> NoReturn:
    """Raise for a failed message, with CPI's error text (``ErrorInformation/$value``)."""
    guid = status.get("MessageGuid")
    raw = raw_message_state(status)
    if raw == "NOT_FOUND":
        raise CloudIntegrationMessageFailedError(
            f"{PLATFORM} message {guid} did not appear within the grace window: the flow may log at a level "
            "that writes no message processing log, or the log was already purged.",
            platform=PLATFORM,
            details=dict(status),
        )
    error = hook.message_error(str(guid)) if guid else None
    reason = "fail_on_retry=True" if raw.upper() in RETRY_STATES else "the message's error"
    raise CloudIntegrationMessageFailedError(
        f"{PLATFORM} message {guid} of {status.get('IntegrationArtifactId') or 'the flow'} ended {raw} "
        f"({reason}): {error or 'CPI recorded no error text'}."
        + (f" Details: {status.get('AlternateWebLink')}" if status.get("AlternateWebLink") else ""),
        platform=PLATFORM,
        details={**status, "error": error},
    )


# -- deploys ---------------------------------------------------------------------------------


def judge_deploy(
    ref: Mapping[str, Any],
    build: Mapping[str, Any] | None,
    runtime: Mapping[str, Any] | None,
    error: str | None,
    now: float,
) -> dict[str, Any]:
    """The status document of a deploy from what was read so far (build task, runtime artifact, error)."""
    artifact_id = ref["artifact_id"]
    build_state = str((build or {}).get("Status") or "").upper()
    if build is not None and BUILD_STATES.outcome(build_state) is not Outcome.SUCCEEDED:
        return {"phase": "build", "Status": build_state, "Id": artifact_id, "error": error}
    if runtime is None:
        started = float(ref.get("started_at") or now)
        grace = float(ref.get("grace_seconds", DEFAULT_GRACE_SECONDS))
        state = "NOT_DEPLOYED" if now > started + grace else "NOT_DEPLOYED_YET"
        return {"phase": "runtime", "Status": state, "Id": artifact_id, "error": error}
    runtime_state = str(runtime.get("Status") or "").upper()
    if runtime_state == "ERROR" and error is None:
        started = float(ref.get("started_at") or now)
        if now <= started + float(ref.get("grace_seconds", DEFAULT_GRACE_SECONDS)):
            runtime_state = "ERROR_DETAILS_PENDING"
    deployed_on = odata.parse_date(runtime.get("DeployedOn"))
    return {
        "phase": "runtime",
        "Status": runtime_state,
        "Id": runtime.get("Id", artifact_id),
        "Version": runtime.get("Version"),
        "Name": runtime.get("Name"),
        "Type": runtime.get("Type"),
        "DeployedBy": runtime.get("DeployedBy"),
        "DeployedOn": deployed_on.isoformat() if deployed_on else runtime.get("DeployedOn"),
        "error": error,
    }


def deploy_outcome(status: Mapping[str, Any]) -> Outcome:
    table = {"build": BUILD_STATES, "undeploy": UNDEPLOY_STATES}.get(str(status.get("phase")), RUNTIME_STATES)
    return table.outcome(str(status.get("Status") or ""))


def raw_deploy_state(status: Mapping[str, Any]) -> str:
    return f"{status.get('phase')}:{status.get('Status')}"


def fetch_deploy(hook: SapCloudIntegrationHook, ref: Mapping[str, Any]) -> dict[str, Any]:
    """One look at a deploy (or an undeploy, ``ref["mode"] == "undeploy"``)."""
    artifact_id = str(ref["artifact_id"])
    if ref.get("mode") == "undeploy":
        return undeploy_status(artifact_id, hook.runtime_artifact(artifact_id))
    build = hook.build_status(str(ref["task_id"])) if ref.get("task_id") else None
    error = None
    runtime = None
    if build is None or BUILD_STATES.outcome(str(build.get("Status", ""))) is Outcome.SUCCEEDED:
        runtime = hook.runtime_artifact(artifact_id)
    if _needs_error(build, runtime):
        error = hook.runtime_error(artifact_id)
    return judge_deploy(ref, build, runtime, error, time.time())


async def afetch_deploy(hook: SapCloudIntegrationHook, ref: Mapping[str, Any]) -> dict[str, Any]:
    """The async twin of :func:`fetch_deploy` (triggerer)."""
    artifact_id = str(ref["artifact_id"])
    if ref.get("mode") == "undeploy":
        return undeploy_status(artifact_id, await hook.aruntime_artifact(artifact_id))
    build = await hook.abuild_status(str(ref["task_id"])) if ref.get("task_id") else None
    runtime = None
    error = None
    if build is None or BUILD_STATES.outcome(str(build.get("Status", ""))) is Outcome.SUCCEEDED:
        runtime = await hook.aruntime_artifact(artifact_id)
    if _needs_error(build, runtime):
        error = await hook.aruntime_error(artifact_id)
    return judge_deploy(ref, build, runtime, error, time.time())


def _needs_error(build: Mapping[str, Any] | None, runtime: Mapping[str, Any] | None) -> bool:
    if build is not None and BUILD_STATES.outcome(str(build.get("Status", ""))) is Outcome.FAILED:
        return True
    return runtime is not None and str(runtime.get("Status", "")).upper() == "ERROR"


def undeploy_status(artifact_id: str, runtime: Mapping[str, Any] | None) -> dict[str, Any]:
    if runtime is None:
        return {"phase": "undeploy", "Status": "UNDEPLOYED", "Id": artifact_id}
    return {"phase": "undeploy", "Status": str(runtime.get("Status") or "").upper(), "Id": artifact_id}


def raise_deploy_failure(ref: Mapping[str, Any], status: Mapping[str, Any]) -> NoReturn:
    artifact_id = ref.get("artifact_id")
    raw = raw_deploy_state(status)
    if status.get("Status") == "NOT_DEPLOYED":
        message = (
            f"{PLATFORM} deploy of {artifact_id!r} (task {ref.get('task_id')}) finished building but the runtime "
            f"artifact did not appear within {float(ref.get('grace_seconds', DEFAULT_GRACE_SECONDS)):.0f}s; raise "
            "not_found_grace or check the tenant's deploy log."
        )
    else:
        message = (
            f"{PLATFORM} deploy of {artifact_id!r} (task {ref.get('task_id')}) ended {raw}: "
            f"{status.get('error') or 'CPI gave no error details'}."
        )
    raise CloudIntegrationDeployError(message, platform=PLATFORM, details={**ref, "status": dict(status)})


# -- mixins shared by operators and sensors ----------------------------------------------------


class CloudIntegrationHookMixin:
    """One hook per task run: the connection is read once."""

    sap_cloud_integration_conn_id: str

    @property
    def hook(self) -> SapCloudIntegrationHook:
        hook = self.__dict__.get("_hook")
        if hook is None:
            hook = self.__dict__["_hook"] = SapCloudIntegrationHook(self.sap_cloud_integration_conn_id)
        return hook


class MessageStatusMixin(CloudIntegrationHookMixin, RemoteJobMixin):
    """How a message is read and judged (trigger operator and message sensor)."""

    conn_id_field = "sap_cloud_integration_conn_id"

    def fetch(self, ref: dict[str, Any]) -> dict[str, Any]:
        return fetch_message(self.hook, ref)

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return message_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return raw_message_state(status)

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        raise_message_failure(self.hook, status)


class DeployStatusMixin(CloudIntegrationHookMixin, RemoteJobMixin):
    """How a deploy or undeploy is read and judged."""

    conn_id_field = "sap_cloud_integration_conn_id"

    def fetch(self, ref: dict[str, Any]) -> dict[str, Any]:
        return fetch_deploy(self.hook, ref)

    def outcome(self, status: dict[str, Any]) -> Outcome:
        return deploy_outcome(status)

    def raw_state(self, status: dict[str, Any]) -> str:
        return raw_deploy_state(status)

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        raise_deploy_failure(ref, status)
