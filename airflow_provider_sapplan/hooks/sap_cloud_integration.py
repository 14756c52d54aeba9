"""SAP Cloud Integration (CPI): service-key connection, the OData API ``/api/v1`` and flow endpoints.

Two credentials meet here: the ``api`` plan key (``service_key``) for ``/api/v1`` and the
``integration-flow`` plan key (``runtime_service_key``) for ``/http/...`` flow endpoints; each
has its own token, cached separately by the core. Basic auth (host, login, password) serves both
sides when no key is given. Retries, tokens, CSRF (fetched on ``GET /api/v1/``), OData envelopes
and error mapping come from :mod:`airflow_provider_sapplan.core`; this module only names the
endpoints and reads their answers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any
from urllib.parse import quote

from airflow_provider_sapplan.connections import form_for
from airflow_provider_sapplan.core import odata
from airflow_provider_sapplan.core.auth import StaticHeaderAuth, secret_digest
from airflow_provider_sapplan.core.hook import PlatformHook, extra_field, parse_timeout
from airflow_provider_sapplan.core.http import ClientConfig, HttpClient
from airflow_provider_sapplan.core.oauth_grants import ServiceKeyGrant
from airflow_provider_sapplan.exceptions import (
    ConnectionConfigError,
    InvalidRequestError,
    NameResolutionError,
    NotFoundError,
)

PLATFORM = "SAP Cloud Integration"
API_PATH = "/api/v1"
CORRELATION_HEADER = "SAP_MplCorrelationId"
MESSAGE_ID_HEADER = "SAP_MessageProcessingLogID"
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024

STATUS_HINTS: dict[int, str] = {
    400: "Cloud Integration rejected the request; its message above names what to fix "
    "(for a deploy: the runtime profile of the artifact).",
    401: "The token or login was rejected. /api/v1 needs the 'api' plan key (service_key); flow endpoints "
    "need the 'integration-flow' plan key (runtime_service_key): check the right key is in each extra.",
    403: "The client or user lacks a role for this call (MonitoringDataRead for messages, "
    "WorkspaceArtifactsDeploy for deploys, ESBMessaging.send for flow calls).",
    404: "Check the artifact id (case-sensitive), the package id and the message id; a flow that was "
    "deployed a moment ago may not be visible yet.",
    429: "The tenant's rate limit was hit through every retry; poll less often (raise poll_interval).",
}


@dataclass(frozen=True)
class ServiceKey:
    """The parts of a Cloud Integration service key (``api`` or ``integration-flow`` plan) used here."""

    url: str
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    certificate: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        if self.username is not None:
            return "basic"
        return "x509" if self.certificate else "client_secret"


def parse_service_key(raw: Any, conn_id: str, extra_name: str) -> ServiceKey:
    """Read a pasted service key (dict or JSON text); a missing field is named in the error."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as err:
            raise ConnectionConfigError(
                f"Connection {conn_id!r}: {extra_name} is not valid JSON ({err}); paste the whole service key."
            ) from None
    if not isinstance(raw, Mapping):
        raise ConnectionConfigError(f"Connection {conn_id!r}: {extra_name} must be a JSON object.")
    oauth = raw.get("oauth")
    if not isinstance(oauth, Mapping):
        raise ConnectionConfigError(
            f"Connection {conn_id!r}: {extra_name} has no 'oauth' section. Paste the service key of the "
            "Process Integration Runtime instance as shown by 'cf service-key <instance> <key>'."
        )

    def need(name: str) -> str:
        value = oauth.get(name)
        if value in (None, ""):
            raise ConnectionConfigError(
                f"Connection {conn_id!r}: {extra_name} has no 'oauth.{name}'. Paste the complete service key."
            )
        return str(value)

    url = need("url").rstrip("/")
    client_id = need("clientid")
    if oauth.get("certificate") or oauth.get("key"):
        token_url = str(oauth.get("certurl") or oauth.get("tokenurl") or "")
        if not token_url:
            raise ConnectionConfigError(
                f"Connection {conn_id!r}: {extra_name} is a certificate key without 'oauth.tokenurl' "
                "or 'oauth.certurl'."
            )
        if not token_url.rstrip("/").endswith("/oauth/token"):
            token_url = token_url.rstrip("/") + "/oauth/token"
        return ServiceKey(
            url=url, token_url=token_url, client_id=client_id, certificate=need("certificate"), key=need("key")
        )
    return ServiceKey(url=url, token_url=need("tokenurl"), client_id=client_id, client_secret=need("clientsecret"))


class CpiClientCredentials(ServiceKeyGrant):
    """OAuth client credentials for one plan's key: client secret (Basic) or x509 (mutual TLS).

    The plan is part of the identity: an ``api`` token cannot call flows and a flow token cannot call
    ``/api/v1``, so the two keys never share a cached token.
    """

    platform = PLATFORM

    def __init__(self, key: ServiceKey, plan: str) -> None:
        super().__init__(key)
        self.plan = plan
        self.missing_token_hint = f"check the oauth section of the {plan} plan's key."

    def identity(self) -> tuple[Any, ...]:
        return (self.plan, *super().identity())

    def rejection_hint(self) -> str:
        field = "service_key" if self.plan == "api" else "runtime_service_key"
        if self.key.kind == "x509":
            return f"Check the {field}'s oauth certificate and key (same, unexpired key), clientid and token URL."
        return f"Check the {field}'s oauth clientid, clientsecret and tokenurl; recreate the key if it was rotated."


def _basic(login: str, password: str) -> StaticHeaderAuth:
    encoded = base64.b64encode(f"{login}:{password}".encode()).decode()
    return StaticHeaderAuth(
        {"Authorization": f"Basic {encoded}"},
        identity=(login, secret_digest(password)),
        hint="Check the connection's User and Password (basic auth) and the Tenant URL.",
    )


def key_literal(value: str) -> str:
    """An OData key value in a path: quoted, quotes doubled, URL-escaped (ids may hold spaces)."""
    return quote(odata.string_literal(value), safe="'")


class SapCloudIntegrationHook(PlatformHook):
    """Talks to one SAP Cloud Integration tenant: OData API (``api`` plan) and flow endpoints.

    :param sap_cloud_integration_conn_id: connection of type ``sap_cloud_integration``.
    """

    conn_name_attr = "sap_cloud_integration_conn_id"
    default_conn_name = "sap_cloud_integration_default"
    conn_type = "sap_cloud_integration"
    hook_name = "SAP Cloud Integration"

    def __init__(self, sap_cloud_integration_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=sap_cloud_integration_conn_id, **kwargs)
        self.sap_cloud_integration_conn_id = sap_cloud_integration_conn_id
        self.tenant_url: str = ""
        self.web_ui_url: str | None = None
        self._runtime_config: ClientConfig | None = None
        self._runtime_client: HttpClient | None = None

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return form_for(cls.conn_type).form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return form_for(cls.conn_type).field_behaviour()

    # -- connection -------------------------------------------------------------------------------

    def build_client_config(self, conn: Any, extras: dict[str, Any]) -> ClientConfig:
        raw = extra_field(extras, self.conn_type, "service_key")
        raw_runtime = extra_field(extras, self.conn_type, "runtime_service_key")
        timeout = parse_timeout(extra_field(extras, self.conn_type, "timeout"), self.conn_id) or (10.0, 120.0)
        host = (conn.host or "").strip()
        if host and "://" not in host:
            host = f"https://{host}"
        basic = _basic(conn.login, conn.password) if conn.login and conn.password else None
        if raw:
            key = parse_service_key(raw, self.conn_id, "service_key")
            api_url, api_auth = key.url, CpiClientCredentials(key, "api")
        elif host and basic is not None:
            api_url, api_auth = host.rstrip("/"), basic
        else:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r} has no service_key extra: paste the 'api' plan service key JSON "
                "into it (or set Host to the tenant URL with Login and Password for basic auth)."
            )
        if raw_runtime:
            runtime_key = parse_service_key(raw_runtime, self.conn_id, "runtime_service_key")
            runtime_url: str = runtime_key.url
            runtime_auth: Any = CpiClientCredentials(runtime_key, "integration-flow")
        else:
            runtime_url = str(extra_field(extras, self.conn_type, "runtime_url") or _runtime_host(api_url))
            runtime_auth = basic
        runtime_url = str(extra_field(extras, self.conn_type, "runtime_url") or runtime_url).rstrip("/")
        self.tenant_url = api_url
        self.web_ui_url = extra_field(extras, self.conn_type, "web_ui_url") or None
        self._runtime_config = ClientConfig(
            platform=PLATFORM,
            base_url=runtime_url,
            auth=runtime_auth,
            status_hints=STATUS_HINTS,
            timeout=timeout,
        )
        return ClientConfig(
            platform=PLATFORM,
            base_url=api_url + API_PATH,
            auth=api_auth,
            status_hints=STATUS_HINTS,
            timeout=timeout,
            csrf_fetch_path="/",
        )

    @property
    def runtime_client(self) -> HttpClient:
        """The client for flow endpoints (``integration-flow`` plan token or basic auth)."""
        self.get_conn()
        if self._runtime_client is None:
            assert self._runtime_config is not None
            if self._runtime_config.auth is None:
                raise ConnectionConfigError(
                    f"Connection {self.conn_id!r} cannot call flow endpoints: add the 'integration-flow' plan "
                    "service key as the runtime_service_key extra (an 'api' plan token cannot call flows), or "
                    "set Login and Password for basic auth."
                )
            self._runtime_client = HttpClient(self._runtime_config)
        return self._runtime_client

    def check_connection(self) -> str:
        payload = self.client.get_json("IntegrationRuntimeArtifacts", params={"$top": "1", "$select": "Id"})
        return (
            f"Connected to SAP Cloud Integration; {len(odata.results(payload))} runtime artifact(s) on the first page."
        )

    def artifact_web_url(self, artifact_id: str) -> str:
        """The tenant UI page of a deployed artifact (``web_ui_url`` extra, else the API host)."""
        self.get_conn()
        base = (self.web_ui_url or self.tenant_url).rstrip("/")
        return f"{base}/itspaces/shell/monitoring/Artifacts/{quote(json.dumps({'artifactId': artifact_id}), safe='')}"

    def message_web_url(self, message_guid: str) -> str:
        """The tenant UI page of a message (the same form as the log's ``AlternateWebLink``)."""
        self.get_conn()
        base = (self.web_ui_url or self.tenant_url).rstrip("/")
        detail = quote(json.dumps({"messageGuid": message_guid}), safe="")
        return f"{base}/itspaces/shell/monitoring/MessageDetails/{detail}"

    # -- design time ------------------------------------------------------------------------------

    @staticmethod
    def designtime_path(artifact_id: str, version: str = "active") -> str:
        return f"IntegrationDesigntimeArtifacts(Id={key_literal(artifact_id)},Version={key_literal(version)})"

    def get_designtime_artifact(self, artifact_id: str, version: str = "active") -> dict[str, Any] | None:
        """The design-time artifact's metadata, or None when it does not exist."""
        try:
            return odata.entity(self.client.get_json(self.designtime_path(artifact_id, version)))
        except NotFoundError:
            return None

    def upload_artifact(
        self, artifact_id: str, package_id: str, content: bytes, artifact_name: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create the iFlow ``artifact_id`` in ``package_id`` from a zip, or update it when it exists.

        :return: (the artifact's metadata, whether it was created).
        """
        body: dict[str, Any] = {
            "Name": artifact_name or artifact_id,
            "ArtifactContent": base64.b64encode(content).decode(),
        }
        existing = self.get_designtime_artifact(artifact_id)
        if existing is None:
            created = self.client.post_json(
                "IntegrationDesigntimeArtifacts",
                json={**body, "Id": artifact_id, "PackageId": package_id},
                idempotent=False,
            )
            return odata.entity(created) or {"Id": artifact_id, "PackageId": package_id}, True
        self.client.request("PUT", self.designtime_path(artifact_id), json=body).close()
        return self.get_designtime_artifact(artifact_id) or existing, False

    def download_artifact(self, artifact_id: str, destination: Any, version: str = "active") -> int:
        """Write the artifact's zip to ``destination`` (local or object-storage path); returns bytes written."""
        from airflow_provider_sapplan.core.storage import open_for_write

        written = 0
        with open_for_write(destination) as handle:
            for piece in self.client.stream_bytes(
                f"{self.designtime_path(artifact_id, version)}/$value", headers={"Accept": "application/zip"}
            ):
                handle.write(piece)
                written += len(piece)
        return written

    def get_configurations(self, artifact_id: str, version: str = "active") -> list[dict[str, Any]]:
        """The externalized parameters (``ParameterKey``, ``ParameterValue``, ``DataType``)."""
        return odata.results(self.client.get_json(f"{self.designtime_path(artifact_id, version)}/Configurations"))

    def update_configuration(self, artifact_id: str, name: str, value: Any, data_type: str = "xsd:string") -> None:
        path = f"{self.designtime_path(artifact_id)}/Configurations({key_literal(name)})"
        self.client.request("PUT", path, json={"ParameterValue": _param_text(value), "DataType": data_type}).close()

    # -- deploy and runtime -----------------------------------------------------------------------

    def deploy(self, artifact_id: str, version: str = "active") -> str:
        """Start deploying; returns the build task id (CPI answers 202 with it as plain text)."""
        response = self.client.request(
            "POST",
            "DeployIntegrationDesigntimeArtifact",
            params={"Id": odata.string_literal(artifact_id), "Version": odata.string_literal(version)},
            idempotent=False,
            expect_data=False,
        )
        try:
            return parse_task_id(response.text)
        finally:
            response.close()

    def build_status(self, task_id: str) -> dict[str, Any] | None:
        """``BuildAndDeployStatus`` of a deploy task, or None when the task is unknown (404)."""
        try:
            return odata.entity(self.client.get_json(f"BuildAndDeployStatus(TaskId={key_literal(task_id)})"))
        except NotFoundError:
            return None

    def runtime_artifact(self, artifact_id: str) -> dict[str, Any] | None:
        """The deployed artifact, or None while (or when) it is not deployed (404)."""
        try:
            return odata.entity(self.client.get_json(f"IntegrationRuntimeArtifacts({key_literal(artifact_id)})"))
        except NotFoundError:
            return None

    def runtime_error(self, artifact_id: str) -> str | None:
        """The deploy error text, or None while CPI has not written it yet (204)."""
        try:
            response = self.client.request(
                "GET",
                f"IntegrationRuntimeArtifacts({key_literal(artifact_id)})/ErrorInformation/$value",
                expect_data=False,
            )
        except NotFoundError:
            return None
        try:
            return None if response.status_code == 204 or not response.content else deploy_error_text(response.text)
        finally:
            response.close()

    def undeploy(self, artifact_id: str) -> bool:
        """Undeploy; False when the artifact was not deployed (not an error)."""
        try:
            self.client.request("DELETE", f"IntegrationRuntimeArtifacts({key_literal(artifact_id)})").close()
        except NotFoundError:
            return False
        return True

    def service_endpoints(self, artifact_id: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"$expand": "EntryPoints"}
        if artifact_id:
            params["$filter"] = f"Name eq {odata.string_literal(artifact_id)}"
        return list(odata.iterate_pages(lambda p, q: self.client.get_json(p, params=q), "ServiceEndpoints", params))

    def resolve_endpoint(self, artifact_id: str) -> str:
        """The runtime path (``/http/...``) of the artifact's HTTP(S) entry point."""
        endpoints = self.service_endpoints(artifact_id)
        urls = [
            str(point.get("Url"))
            for endpoint in endpoints
            if str(endpoint.get("Name")) == artifact_id or str(endpoint.get("Id", "")).startswith(artifact_id)
            for point in odata.results(endpoint.get("EntryPoints") or {})
            if point.get("Url")
        ]
        http = [url for url in urls if "/http/" in url]
        if len(http) != 1:
            raise NameResolutionError(
                f"{artifact_id!r} has {len(http)} HTTP entry points ({', '.join(http) or 'none'}; all: "
                f"{', '.join(urls) or 'none'}); pass endpoint_path (e.g. '/http/orders/import') instead.",
                platform=PLATFORM,
            )
        url = http[0]
        return url[url.index("/http/") :]

    # -- messages -----------------------------------------------------------------------------------

    def get_message(self, message_guid: str) -> dict[str, Any] | None:
        """A message processing log, or None when it does not exist (yet)."""
        try:
            return odata.entity(self.client.get_json(f"MessageProcessingLogs({key_literal(message_guid)})"))
        except NotFoundError:
            return None

    def query_messages(
        self,
        *,
        artifact_id: str | None = None,
        correlation_id: str | None = None,
        status: str | None = None,
        started_after: datetime | str | None = None,
        started_before: datetime | str | None = None,
        exclude_discarded: bool = True,
        top: int | None = None,
    ) -> list[dict[str, Any]]:
        """Messages matching every given criterion, newest first (all pages unless ``top``)."""
        params = message_query(
            artifact_id=artifact_id,
            correlation_id=correlation_id,
            status=status,
            started_after=started_after,
            started_before=started_before,
            exclude_discarded=exclude_discarded,
            top=top,
        )
        pages = odata.iterate_pages(lambda p, q: self.client.get_json(p, params=q), "MessageProcessingLogs", params)
        if top:
            return [item for _, item in zip(range(top), pages, strict=False)]
        return list(pages)

    def message_error(self, message_guid: str) -> str | None:
        """The error text of a failed message (plain text), or None when there is none."""
        try:
            response = self.client.request(
                "GET", f"MessageProcessingLogs({key_literal(message_guid)})/ErrorInformation/$value", expect_data=False
            )
        except NotFoundError:
            return None
        try:
            return response.text.strip() or None if response.status_code != 204 else None
        finally:
            response.close()

    async def aget_message(self, message_guid: str) -> dict[str, Any] | None:
        client = await self.aget_client()
        try:
            return odata.entity(await client.get_json(f"MessageProcessingLogs({key_literal(message_guid)})"))
        except NotFoundError:
            return None

    async def aquery_messages(self, **criteria: Any) -> list[dict[str, Any]]:
        """The first page of :meth:`query_messages` (triggers only need the newest message)."""
        client = await self.aget_client()
        return odata.results(await client.get_json("MessageProcessingLogs", params=message_query(**criteria)))

    async def abuild_status(self, task_id: str) -> dict[str, Any] | None:
        client = await self.aget_client()
        try:
            return odata.entity(await client.get_json(f"BuildAndDeployStatus(TaskId={key_literal(task_id)})"))
        except NotFoundError:
            return None

    async def aruntime_artifact(self, artifact_id: str) -> dict[str, Any] | None:
        client = await self.aget_client()
        try:
            return odata.entity(await client.get_json(f"IntegrationRuntimeArtifacts({key_literal(artifact_id)})"))
        except NotFoundError:
            return None

    async def aruntime_error(self, artifact_id: str) -> str | None:
        client = await self.aget_client()
        try:
            response = await client.request(
                "GET",
                f"IntegrationRuntimeArtifacts({key_literal(artifact_id)})/ErrorInformation/$value",
                expect_data=False,
            )
        except NotFoundError:
            return None
        if response.status == 204 or not response.body:
            return None
        return deploy_error_text(response.body.decode("utf-8", "replace"))

    # -- flow endpoints ---------------------------------------------------------------------------

    def call_flow(
        self,
        endpoint_path: str,
        *,
        method: str = "POST",
        body: bytes | str | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
    ) -> Any:
        """Call a flow endpoint once (never repeated once sent); returns the streamed response.

        Only refusals that prove nothing was processed are retried by the core (connection refused,
        429, 503). The caller reads (boundedly) and closes the response.
        """
        send = {"Accept": "*/*", **(headers or {})}
        if correlation_id:
            send[CORRELATION_HEADER] = correlation_id
        return self.runtime_client.request(
            method, endpoint_path, data=body, headers=send, stream=True, idempotent=False, expect_data=False
        )


def message_query(
    *,
    artifact_id: str | None = None,
    correlation_id: str | None = None,
    status: str | None = None,
    started_after: datetime | str | None = None,
    started_before: datetime | str | None = None,
    exclude_discarded: bool = True,
    top: int | None = None,
) -> dict[str, str]:
    """``$filter``/``$orderby``/``$top`` for the message query (UTC ``datetime'...'`` literals)."""
    terms: list[str] = []
    if artifact_id:
        terms.append(f"IntegrationArtifact/Id eq {odata.string_literal(artifact_id)}")
    if correlation_id:
        terms.append(f"CorrelationId eq {odata.string_literal(correlation_id)}")
    if status:
        terms.append(f"Status eq {odata.string_literal(status.upper())}")
    elif exclude_discarded:
        terms.append("Status ne 'DISCARDED'")
    if started_after is not None:
        terms.append(f"LogStart gt {odata.datetime_literal(started_after)}")
    if started_before is not None:
        terms.append(f"LogStart lt {odata.datetime_literal(started_before)}")
    params = {"$orderby": "LogStart desc", "$inlinecount": "allpages"}
    if terms:
        params["$filter"] = " and ".join(terms)
    if top:
        params["$top"] = str(int(top))
    return params


def parse_task_id(text: str) -> str:
    """The deploy task id from the 202 body: plain text, a JSON string, or ``{"d": {"TaskId"}}``."""
    body = (text or "").strip()
    if body.startswith(("{", '"')):
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, str):
            body = payload
        elif payload is not None:
            found = odata.entity(payload).get("TaskId")
            body = str(found or "")
    if not body or len(body) > 200 or "<" in body:
        raise InvalidRequestError(
            f"Cloud Integration accepted the deploy but returned no task id (body {body[:80]!r}).", platform=PLATFORM
        )
    return body


def deploy_error_text(text: str) -> str:
    """A readable deploy error from ``ErrorInformation/$value``: ``parameter`` JSON strings unpacked."""
    try:
        payload = json.loads(text)
    except ValueError:
        return " ".join(text.split())
    if not isinstance(payload, Mapping):
        return " ".join(text.split())
    parts: list[str] = []
    message = payload.get("message")
    if isinstance(message, Mapping):
        head = message.get("messageText") or message.get("messageId")
        if head:
            parts.append(str(head))
    for raw in payload.get("parameter") or []:
        parts.extend(_unpack_parameter(raw))
    unique = list(dict.fromkeys(p for p in parts if p and p != "ERROR"))
    return "; ".join(unique) or " ".join(text.split())


def _unpack_parameter(raw: Any) -> list[str]:
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            return [raw]
    texts: list[str] = []
    if isinstance(value, Mapping):
        if value.get("messageText"):
            texts.append(str(value["messageText"]))
        elif value.get("message"):
            texts.append(str(value["message"]))
        for child in value.get("childMessageInstances") or []:
            texts.extend(_unpack_parameter(child))
    elif isinstance(value, list):
        for child in value:
            texts.extend(_unpack_parameter(child))
    elif value not in (None, ""):
        texts.append(str(value))
    return texts


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _runtime_host(api_url: str) -> str:
    """The runtime host of a CF tenant (``.it-cpiNNN.`` becomes ``.it-cpiNNN-rt.``); else the same host."""
    import re

    return re.sub(r"(\.it-cpi\d+)(\.)", r"\1-rt\2", api_url, count=1)
