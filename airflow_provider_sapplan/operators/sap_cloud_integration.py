"""SAP Cloud Integration operators: upload, configure, deploy and undeploy iFlows; call a flow and wait.

Semantics (states, outcomes, failures) live in :mod:`airflow_provider_sapplan.jobs.sap_cloud_integration`;
waiting, deferral and durable retries in :mod:`airflow_provider_sapplan.core`. CPI cannot cancel a
deploy or a message: killing a task only logs that the remote work goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from airflow_provider_sapplan._compat import BaseOperator, BaseOperatorLink
from airflow_provider_sapplan.core.links import XComUrlLink
from airflow_provider_sapplan.core.operator import RemoteJobOperator
from airflow_provider_sapplan.core.storage import is_remote, local_file, open_for_read, open_for_write
from airflow_provider_sapplan.core.waiting import seconds
from airflow_provider_sapplan.exceptions import InvalidRequestError, SapplanError
from airflow_provider_sapplan.hooks.sap_cloud_integration import (
    MESSAGE_ID_HEADER,
    PLATFORM,
    SapCloudIntegrationHook,
)
from airflow_provider_sapplan.jobs.sap_cloud_integration import (
    DEFAULT_GRACE_SECONDS,
    RECONNECTABLE_STATES,
    CloudIntegrationHookMixin,
    DeployStatusMixin,
    MessageStatusMixin,
    correlation_id,
)
from airflow_provider_sapplan.triggers.sap_cloud_integration import (
    SapCloudIntegrationDeployTrigger,
    SapCloudIntegrationMessageTrigger,
)

LINK_XCOM_KEY = "sap_cloud_integration_url"
RESPONSE_XCOM_KEY = "response"
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
MAX_ZIP_BYTES = 100 * 1024 * 1024


def _reopener(location: Any) -> Any:
    """A body factory: a fresh handle per attempt, so a refused call can be re-sent from the start."""
    path = local_file(location)
    if path is not None:
        return lambda: path.open("rb")
    from airflow_provider_sapplan.core.storage import _object_path

    return lambda: _object_path(location).open("rb")


class SapCloudIntegrationLink(XComUrlLink):
    """Opens the message (its ``AlternateWebLink``) or the artifact in the tenant's web UI."""

    name = "SAP Cloud Integration"
    xcom_key = LINK_XCOM_KEY


def _push(context: Any, key: str, value: Any) -> None:
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is not None:
        ti.xcom_push(key=key, value=value)


def _need_text(value: Any, name: str, example: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, e.g. {example!r}; got {value!r}.")


def _grace(value: float | timedelta, name: str) -> float:
    grace = seconds(value)
    if grace is None or grace < 0:
        raise ValueError(f"{name} must be zero or more seconds (or a timedelta); got {value!r}.")
    return grace


class _CpiOperator(CloudIntegrationHookMixin, BaseOperator):
    """Shared parameter: the connection."""

    operator_extra_links: ClassVar[tuple[BaseOperatorLink, ...]] = (SapCloudIntegrationLink(),)

    def __init__(
        self, *, sap_cloud_integration_conn_id: str = SapCloudIntegrationHook.default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.sap_cloud_integration_conn_id = sap_cloud_integration_conn_id


class SapCloudIntegrationUploadArtifactOperator(_CpiOperator):
    """Create the design-time iFlow ``artifact_id`` in ``package_id`` from a zip, or update it.

    :param artifact_id: the iFlow id (e.g. ``"Orders_Import"``).
    :param package_id: the integration package that holds it (used when creating).
    :param source: the iFlow zip, a local path or an object-storage path (``s3://...``).
    :param artifact_name: display name; defaults to ``artifact_id``.
    Returns ``{"Id", "Version", "PackageId", "created"}``. Running it twice leaves one artifact.
    """

    template_fields = ("artifact_id", "package_id", "source", "artifact_name")

    def __init__(
        self, *, artifact_id: str, package_id: str, source: Any, artifact_name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.artifact_id = artifact_id
        self.package_id = package_id
        self.source = source
        self.artifact_name = artifact_name
        if "{{" not in str(artifact_id):
            self._validate()

    def _validate(self) -> None:
        _need_text(self.artifact_id, "artifact_id", "Orders_Import")
        _need_text(self.package_id, "package_id", "OrdersPackage")
        if self.source in (None, ""):
            raise ValueError(
                "source must be the iFlow zip's path (local or object storage), e.g. '/data/Orders_Import.zip'."
            )

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        self._validate()

    def execute(self, context: Any) -> dict[str, Any]:
        with open_for_read(self.source) as handle:
            content = handle.read(MAX_ZIP_BYTES + 1)
        if len(content) > MAX_ZIP_BYTES:
            raise InvalidRequestError(
                f"{self.source} is over {MAX_ZIP_BYTES // 2**20} MiB; an iFlow zip is far smaller."
            )
        if not content.startswith(b"PK"):
            raise InvalidRequestError(f"{self.source} is not a zip file; export the iFlow as a zip from the tenant.")
        artifact, created = self.hook.upload_artifact(self.artifact_id, self.package_id, content, self.artifact_name)
        self.log.info(
            "%s design-time artifact %s in package %s.",
            "Created" if created else "Updated",
            self.artifact_id,
            self.package_id,
        )
        _push(context, LINK_XCOM_KEY, self.hook.artifact_web_url(self.artifact_id))
        return {
            "Id": artifact.get("Id", self.artifact_id),
            "Version": artifact.get("Version"),
            "PackageId": artifact.get("PackageId", self.package_id),
            "created": created,
        }


class SapCloudIntegrationUpdateConfigurationOperator(_CpiOperator):
    """Set externalized parameters of ``artifact_id`` (``parameters={"Name": "value"}``).

    Every name is checked against the artifact's configurations before the first write; an unknown
    name fails listing the known ones. Returns the parameters that changed.
    """

    template_fields = ("artifact_id", "parameters")
    template_fields_renderers: ClassVar[dict[str, str]] = {"parameters": "json"}

    def __init__(self, *, artifact_id: str, parameters: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.artifact_id = artifact_id
        self.parameters = parameters
        if "{{" not in str(artifact_id) and not isinstance(parameters, str):
            self._validate()

    def _validate(self) -> None:
        _need_text(self.artifact_id, "artifact_id", "Orders_Import")
        if not isinstance(self.parameters, Mapping) or not self.parameters:
            raise ValueError(
                "parameters must be a non-empty dict such as {'ReceiverHost': 'erp.example.com'}; "
                f"got {self.parameters!r}."
            )

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        self._validate()

    def execute(self, context: Any) -> dict[str, Any]:
        known = {str(c.get("ParameterKey")): c for c in self.hook.get_configurations(self.artifact_id)}
        unknown = sorted(set(self.parameters) - set(known))
        if unknown:
            raise InvalidRequestError(
                f"{self.artifact_id!r} has no externalized parameter(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(map(repr, sorted(known))) or 'none'}. Nothing was changed.",
                platform=PLATFORM,
            )
        changed: dict[str, Any] = {}
        for name, value in self.parameters.items():
            data_type = str(known[name].get("DataType") or "xsd:string")
            self.hook.update_configuration(self.artifact_id, name, value, data_type)
            changed[name] = value
        self.log.info("Set %d parameter(s) of %s: %s", len(changed), self.artifact_id, ", ".join(changed))
        _push(context, LINK_XCOM_KEY, self.hook.artifact_web_url(self.artifact_id))
        return changed


class _DeployBase(DeployStatusMixin, RemoteJobOperator, _CpiOperator):
    trigger_class = SapCloudIntegrationDeployTrigger
    template_fields: tuple[str, ...] = ("artifact_id",)

    def __init__(self, *, artifact_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("cancel_on_kill", False)  # CPI cannot cancel a deploy
        super().__init__(**kwargs)
        self.artifact_id = artifact_id
        if "{{" not in str(artifact_id):
            _need_text(artifact_id, "artifact_id", "Orders_Import")

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        _need_text(self.artifact_id, "artifact_id", "Orders_Import")
        if hasattr(self, "version"):
            _need_text(self.version, "version", "active")

    def extra_xcom(self, ref: dict[str, Any]) -> dict[str, Any]:
        return {LINK_XCOM_KEY: self.hook.artifact_web_url(str(ref["artifact_id"]))}

    def cancel(self, ref: dict[str, Any]) -> None:
        self.log.info("SAP Cloud Integration cannot cancel a deploy or undeploy; %s continues.", ref)


class SapCloudIntegrationDeployOperator(_DeployBase):
    """Deploy ``artifact_id`` and wait until its runtime artifact is STARTED.

    :param version: the design-time version to deploy (``"active"``).
    :param not_found_grace: seconds (or timedelta) during which a 404 of the runtime artifact after
        the build means "not there yet" (default 5 minutes).
    Waiting (``wait_for_completion``, ``deferrable``, ``poll_interval``, ``timeout``, ``durable``) as
    for every operator of this provider. Returns the runtime artifact (Id, Version, Status,
    DeployedOn, DeployedBy); ERROR raises with the text of ``ErrorInformation``.
    """

    template_fields = ("artifact_id", "version")
    xcom_ref_key = "sap_cloud_integration_deploy"
    external_id_key = "sap_cloud_integration_deploy"

    def __init__(
        self, *, version: str = "active", not_found_grace: float | timedelta = DEFAULT_GRACE_SECONDS, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.version = version
        self.not_found_grace = _grace(not_found_grace, "not_found_grace")

    def submit(self, context: Any) -> dict[str, Any]:
        task_id = self.hook.deploy(self.artifact_id, self.version)
        return {
            "artifact_id": self.artifact_id,
            "task_id": task_id,
            "started_at": time.time(),
            "grace_seconds": self.not_found_grace,
        }

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        self.log.info(
            "%s version %s is STARTED (deployed by %s).",
            status.get("Id"),
            status.get("Version"),
            status.get("DeployedBy"),
        )
        return {key: value for key, value in status.items() if key not in ("phase", "error")} | {
            "task_id": ref.get("task_id")
        }


class SapCloudIntegrationUndeployOperator(_DeployBase):
    """Undeploy ``artifact_id`` and wait until it is gone; an artifact that is not deployed is fine.

    Returns True when something was undeployed, False when nothing was deployed.
    """

    xcom_ref_key = "sap_cloud_integration_undeploy"
    external_id_key = "sap_cloud_integration_undeploy"

    def submit(self, context: Any) -> dict[str, Any]:
        was_deployed = self.hook.undeploy(self.artifact_id)
        if not was_deployed:
            self.log.info("%s was not deployed; nothing to undeploy.", self.artifact_id)
        return {"artifact_id": self.artifact_id, "mode": "undeploy", "was_deployed": was_deployed}

    def not_waiting_result(self, ref: dict[str, Any]) -> bool:
        return bool(ref.get("was_deployed"))

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> bool:
        self.log.info("%s is no longer deployed.", ref["artifact_id"])
        return bool(ref.get("was_deployed", True))


class SapCloudIntegrationTriggerFlowOperator(MessageStatusMixin, RemoteJobOperator, _CpiOperator):
    """Call a flow endpoint once and wait on the message it created.

    :param endpoint_path: the runtime path, e.g. ``"/http/orders/import"``; or give ``artifact_id``
        to resolve it through ``ServiceEndpoints``.
    :param artifact_id: the deployed iFlow whose single HTTP(S) entry point to call.
    :param method: HTTP method (``POST``).
    :param data: the body: str, bytes, a dict (sent as JSON), or with ``data_is_path=True`` a local or
        object-storage path whose content is streamed.
    :param headers: extra request headers.
    :param fail_on_retry: fail when the message goes to RETRY or ABANDONED instead of waiting.
    :param not_found_grace: seconds a message may be missing (404) right after the call.
    :param max_response_bytes: at most this much of the answer's body is kept in XCom (1 MiB).
    :param response_destination: write the whole answer there instead (local or object-storage path).

    The call is never sent twice for one try: only refusals before processing (connection refused,
    429, 503) are retried. It carries ``SAP_MplCorrelationId`` derived from the task instance and
    try; a retried task first looks for its earlier tries' messages and waits on one that is
    PROCESSING, RETRY or COMPLETED instead of calling again. CPI cannot cancel a message: killing the
    task only logs.
    """

    template_fields = ("endpoint_path", "artifact_id", "data", "headers", "response_destination")
    template_fields_renderers: ClassVar[dict[str, str]] = {"data": "json", "headers": "json"}
    trigger_class = SapCloudIntegrationMessageTrigger
    xcom_ref_key = "sap_cloud_integration_message"
    external_id_key = "sap_cloud_integration_message"

    def __init__(
        self,
        *,
        endpoint_path: str | None = None,
        artifact_id: str | None = None,
        method: str = "POST",
        data: Any = None,
        data_is_path: bool = False,
        headers: dict[str, str] | None = None,
        fail_on_retry: bool = False,
        not_found_grace: float | timedelta = DEFAULT_GRACE_SECONDS,
        max_response_bytes: int = 1024 * 1024,
        response_destination: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("cancel_on_kill", False)  # CPI cannot cancel a message
        super().__init__(**kwargs)
        self.endpoint_path = endpoint_path
        self.artifact_id = artifact_id
        self.method = str(method).upper()
        self.data = data
        self.data_is_path = data_is_path
        self.headers = headers
        self.fail_on_retry = bool(fail_on_retry)
        self.not_found_grace = _grace(not_found_grace, "not_found_grace")
        self.max_response_bytes = int(max_response_bytes)
        self.response_destination = response_destination
        self._response: dict[str, Any] | None = None
        if self.method not in HTTP_METHODS:
            raise ValueError(f"method must be one of {', '.join(sorted(HTTP_METHODS))}; got {method!r}.")
        if self.max_response_bytes < 0:
            raise ValueError(f"max_response_bytes must be 0 or more; got {max_response_bytes!r}.")
        if "{{" not in f"{endpoint_path}{artifact_id}{headers}":
            self._validate()

    def _validate(self) -> None:
        if (self.endpoint_path in (None, "")) == (self.artifact_id in (None, "")):
            raise ValueError("Give exactly one of endpoint_path (e.g. '/http/orders/import') or artifact_id.")
        if self.endpoint_path and not str(self.endpoint_path).startswith("/http/"):
            raise ValueError(
                f"endpoint_path {self.endpoint_path!r} must be the flow's runtime path starting with '/http/', "
                "e.g. '/http/orders/import' (the part after the runtime host)."
            )
        if self.headers is not None and (
            not isinstance(self.headers, Mapping) or not all(isinstance(v, str) for v in self.headers.values())
        ):
            raise ValueError(f"headers must be a dict of strings; got {self.headers!r}.")
        if self.data_is_path and self.data in (None, ""):
            raise ValueError("data_is_path=True needs data to be the path of the file to send.")
        if self.data_is_path and not is_remote(self.data):
            path = local_file(self.data)
            if path is not None and not path.is_file():
                raise ValueError(f"data file {path} does not exist.")

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        self._validate()

    # -- submit: reconnect to an earlier try's message, or call the flow once --------------------

    def submit(self, context: Any) -> dict[str, Any]:
        ti = context.get("ti") if hasattr(context, "get") else None
        try_number = int(getattr(ti, "try_number", 1) or 1) if ti is not None else 1
        if ti is not None:
            earlier = self._earlier_message(ti, try_number)
            if earlier is not None:
                return earlier
        cid = correlation_id(ti, try_number) if ti is not None else None
        path = str(self.endpoint_path or self.hook.resolve_endpoint(str(self.artifact_id)))
        headers = dict(self.headers or {})
        body = self._body(headers)
        called_at = time.time()
        self.log.info("Calling %s %s with correlation id %s.", self.method, path, cid)
        try:
            response = self.hook.call_flow(path, method=self.method, body=body, headers=headers, correlation_id=cid)
        except SapplanError as err:
            if err.status_code is not None and err.status_code >= 500 and cid:
                found = self.hook.query_messages(correlation_id=cid, top=1)
                if found:  # the flow ran and failed: a failed message, not a transport error
                    self.log.warning("The flow answered HTTP %s; waiting on its message.", err.status_code)
                    return self._message_ref(str(found[0]["MessageGuid"]), cid, called_at, context)
            raise
        try:
            guid = next((v for k, v in response.headers.items() if k.lower() == MESSAGE_ID_HEADER.lower()), None)
            self._response = self._read_response(response)
        finally:
            response.close()
        if not guid:
            if not cid:
                raise SapplanError(
                    f"{PLATFORM} answered HTTP {response.status_code} without {MESSAGE_ID_HEADER}; "
                    "cannot wait on the message.",
                    platform=PLATFORM,
                )
            found = self.hook.query_messages(correlation_id=cid, top=1)
            guid = str(found[0]["MessageGuid"]) if found else None
        return self._message_ref(guid, cid, called_at, context)

    def _message_ref(self, guid: str | None, cid: str | None, called_at: float, context: Any) -> dict[str, Any]:
        ref: dict[str, Any] = {
            "message_guid": guid,
            "correlation_id": cid,
            "called_at": called_at,
            "grace_seconds": self.not_found_grace,
            "fail_on_retry": self.fail_on_retry,
        }
        if not guid:  # no id in the answer and no log yet: follow the correlation id
            ref["started_after"] = None
        return ref

    def _earlier_message(self, ti: Any, try_number: int) -> dict[str, Any] | None:
        for earlier_try in range(try_number - 1, 0, -1):
            cid = correlation_id(ti, earlier_try)
            found = self.hook.query_messages(correlation_id=cid, top=1)
            if not found:
                continue
            state = str(found[0].get("Status", "")).upper()
            if state in RECONNECTABLE_STATES:
                self.log.info(
                    "Try %d's call reached CPI (message %s is %s): waiting on it instead of calling the flow again.",
                    earlier_try,
                    found[0].get("MessageGuid"),
                    state,
                )
                ref = self._message_ref(str(found[0]["MessageGuid"]), cid, time.time(), None)
                ref["reconnected"] = True
                return ref
            self.log.info(
                "Try %d's message %s ended %s: calling the flow again.", earlier_try, found[0].get("MessageGuid"), state
            )
            return None
        return None

    def _body(self, headers: dict[str, str]) -> Any:
        data = self.data
        if self.data_is_path:
            return _reopener(data)
        if isinstance(data, (dict, list)):
            headers.setdefault("Content-Type", "application/json")
            return json.dumps(data).encode()
        if isinstance(data, str):
            return data.encode()
        return data

    def _read_response(self, response: Any) -> dict[str, Any]:
        content_type = response.headers.get("Content-Type", "")
        summary: dict[str, Any] = {"status_code": response.status_code, "content_type": content_type}
        if self.response_destination not in (None, ""):
            size = 0
            with open_for_write(self.response_destination) as handle:
                for piece in response.iter_content(chunk_size=1024 * 1024):
                    handle.write(piece)
                    size += len(piece)
            return {**summary, "destination": str(self.response_destination), "size": size}
        kept = bytearray()
        truncated = False
        for piece in response.iter_content(chunk_size=64 * 1024):
            room = self.max_response_bytes - len(kept)
            if len(piece) > room:
                kept.extend(piece[:room])
                truncated = True
                break
            kept.extend(piece)
        if truncated:
            self.log.warning(
                "The flow's answer is over max_response_bytes=%d; XCom keeps the first %d bytes. "
                "Set response_destination to keep all of it.",
                self.max_response_bytes,
                len(kept),
            )
        return {**summary, "body": bytes(kept).decode("utf-8", "replace"), "truncated": truncated, "size": len(kept)}

    def extra_xcom(self, ref: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {RESPONSE_XCOM_KEY: self._response}
        if ref.get("message_guid"):  # the link works before the wait starts
            values[LINK_XCOM_KEY] = self.hook.message_web_url(str(ref["message_guid"]))
        return values

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> dict[str, Any]:
        response = self._response
        if response is None and not ref.get("reconnected"):
            ti = context.get("ti") if hasattr(context, "get") else None
            pulled = ti.xcom_pull(task_ids=self.task_id, key=RESPONSE_XCOM_KEY) if ti is not None else None
            response = pulled if isinstance(pulled, dict) else None
        if status.get("AlternateWebLink"):
            _push(context, LINK_XCOM_KEY, status["AlternateWebLink"])
        self.log.info("Message %s COMPLETED.", status.get("MessageGuid"))
        result = {k: v for k, v in status.items() if k != "fail_on_retry"}
        return {**result, "reconnected": bool(ref.get("reconnected")), "response": response}

    def cancel(self, ref: dict[str, Any]) -> None:
        self.log.info("SAP Cloud Integration cannot cancel a message; %s keeps processing.", ref)

    def on_kill(self) -> None:
        if self._ref:
            self.log.info(
                "SAP Cloud Integration cannot cancel a message: %s keeps processing after this task is killed.",
                self._ref,
            )
