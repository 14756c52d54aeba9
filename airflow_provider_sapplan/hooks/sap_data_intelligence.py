"""SAP Data Intelligence: the RMS (replication flow) internal API and the public pipeline API.

Only what is specific to DI lives here: how a connection names the tenant and user (HTTP basic
with ``tenant\\user``), the ``X-Requested-With`` header DI demands on every call, the endpoints
and their awkward shapes (a monitor that always answers an array, 202 change requests). Retries,
error mapping and the HTML-logon-page check come from :mod:`airflow_provider_sapplan.core`; what
the answers *mean* (states, outcomes, timestamps) is in :mod:`airflow_provider_sapplan.jobs.sap_data_intelligence`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_sapplan.connections import form_for
from airflow_provider_sapplan.core.auth import StaticHeaderAuth, secret_digest
from airflow_provider_sapplan.core.hook import PlatformHook, extra_field, parse_timeout
from airflow_provider_sapplan.core.http import ClientConfig
from airflow_provider_sapplan.core.retry import RetryPolicy
from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    InvalidRequestError,
    NotFoundError,
    SapplanError,
)

PLATFORM = "SAP Data Intelligence"
DEFAULT_RMS_API_PATH = "/app/rms/api/dt/v1"
PIPELINE_API_PATH = "/app/pipeline-modeler/service/v1"
REQUESTED_WITH = "Fetch"

RUN_ALL = "RUN_OR_RESUME_ALL_INACTIVE_TASKS"
SUSPEND_ALL = "SUSPEND_ALL_ACTIVE_TASKS"
RUN_SELECTIVE = "RUN_OR_RESUME_SELECTIVE_INACTIVE_TASKS"
SUSPEND_SELECTIVE = "SUSPEND_SELECTIVE_ACTIVE_TASKS"
REQUEST_TYPES = (RUN_ALL, SUSPEND_ALL, RUN_SELECTIVE, SUSPEND_SELECTIVE)
SELECTIVE = {RUN_ALL: RUN_SELECTIVE, SUSPEND_ALL: SUSPEND_SELECTIVE}

LOGIN_HINT = (
    "DI answers its HTML logon page when basic credentials are rejected: set Login to 'tenant\\user' "
    "(e.g. 'default\\etl_user'), or Login to the user with the tenant in extra 'tenant', and check the password."
)

STATUS_HINTS: dict[int, str] = {
    401: LOGIN_HINT,
    403: "DI answers 403 to API calls without a non-empty X-Requested-With header (CSRF protection; the "
    "provider always sends 'X-Requested-With: Fetch', so check that no proxy strips it), and to users "
    "lacking the policy for replication flows or pipelines (e.g. sap.dh.member, sap.dh.admin).",
    404: "Check the flow name (names are case-sensitive), the graph handle, and extra 'rms_api_path' "
    f"(default {DEFAULT_RMS_API_PATH}).",
    409: "Another change request on this flow is still being processed; wait for it and run the task again.",
}


class SapDataIntelligenceHook(PlatformHook):
    """Talks to one SAP Data Intelligence tenant.

    :param sap_data_intelligence_conn_id: the Airflow connection (type ``sap_data_intelligence``):
        Host = tenant URL, Login = ``tenant\\user`` (or user plus extra ``tenant``), Password.
        Extras: ``rms_api_path`` (default ``/app/rms/api/dt/v1``), ``timezone`` of the monitors'
        local timestamps (default ``UTC``), ``timeout``.
    """

    conn_name_attr = "sap_data_intelligence_conn_id"
    default_conn_name = "sap_data_intelligence_default"
    conn_type = "sap_data_intelligence"
    hook_name = "SAP Data Intelligence"

    def __init__(self, sap_data_intelligence_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=sap_data_intelligence_conn_id, **kwargs)
        self.sap_data_intelligence_conn_id = sap_data_intelligence_conn_id
        self.rms_api_path = DEFAULT_RMS_API_PATH
        self.timezone: Any = ZoneInfo("UTC")
        self.host = ""

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return form_for(cls.conn_type).form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return form_for(cls.conn_type).field_behaviour()

    # -- connection -------------------------------------------------------------------------------

    def remember_connection(self, conn: Any, extras: dict[str, Any]) -> None:
        path = str(extra_field(extras, self.conn_type, "rms_api_path", DEFAULT_RMS_API_PATH)).strip()
        self.rms_api_path = "/" + path.strip("/")
        name = str(extra_field(extras, self.conn_type, "timezone", "UTC")).strip()
        try:
            self.timezone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r}: extra 'timezone' {name!r} is not an IANA time zone; use the "
                "tenant's zone, e.g. 'Europe/Berlin' or 'UTC'."
            ) from None

    def build_client_config(self, conn: Any, extras: dict[str, Any]) -> ClientConfig:
        if not conn.host:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r} has no host: set it to the DI tenant URL, e.g. "
                "https://vsystem.ingress.<cluster>.dhaas-live.shoot.live.k8s-hana.ondemand.com."
            )
        host = conn.host if "://" in conn.host else f"https://{conn.host}"
        if conn.port and f":{conn.port}" not in host.split("://", 1)[1]:
            host = f"{host.rstrip('/')}:{conn.port}"
        self.host = host.rstrip("/")
        user = basic_user(conn.login, extra_field(extras, self.conn_type, "tenant"), self.conn_id)
        if not conn.password:
            raise ConnectionConfigError(f"Connection {self.conn_id!r} has no password for {user!r}.")
        secret = base64.b64encode(f"{user}:{conn.password}".encode()).decode()
        auth = StaticHeaderAuth(
            {"Authorization": f"Basic {secret}", "X-Requested-With": REQUESTED_WITH},
            identity=(self.host, user, secret_digest(conn.password)),
            hint=f"Check User ({user!r}: it must read tenant\\user) and Password.",
        )
        return ClientConfig(
            platform=PLATFORM,
            base_url=self.host,
            auth=auth,
            status_hints=STATUS_HINTS,
            # 409: another change request on the flow is still processing; ours was not taken, so
            # even a change request may be sent again once the other one is done.
            policy=RetryPolicy().with_statuses(409),
            timeout=parse_timeout(extra_field(extras, self.conn_type, "timeout"), self.conn_id) or (10.0, 60.0),
        )

    def check_connection(self) -> str:
        flows = self.list_flows()
        return f"Connected to SAP Data Intelligence; {len(flows)} replication flow(s) visible."

    # -- links ------------------------------------------------------------------------------------

    def flow_monitor_url(self, flow: str) -> str:
        """The flow in the DI monitoring UI (path observed in the UI, not a documented contract)."""
        self.get_conn()
        return f"{self.host}/app/dh-monitoring/index.html#/replicationflows/{quote(flow, safe='')}"

    def graph_url(self, handle: str) -> str:
        """The graph run in the Pipeline Modeler."""
        self.get_conn()
        return f"{self.host}/app/pipeline-modeler/#/runtime/graphs/{quote(handle, safe='')}"

    # -- transport with DI's logon-page advice ------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except AuthenticationError as err:
            raise _with_login_hint(err) from None
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise SapplanError(
                f"{PLATFORM} answered {method} {path} with a body that is not JSON; check that Host is the tenant "
                f"URL and extra 'rms_api_path' (default {DEFAULT_RMS_API_PATH}).",
                platform=PLATFORM,
                status_code=response.status_code,
            ) from None
        finally:
            response.close()

    async def _ajson(self, method: str, path: str, **kwargs: Any) -> Any:
        client = await self.aget_client()
        try:
            response = await client.request(method, path, **kwargs)
        except AuthenticationError as err:
            raise _with_login_hint(err) from None
        try:
            return response.json() if response.body else {}
        except ValueError:
            raise SapplanError(
                f"{PLATFORM} answered {method} {path} with a body that is not JSON; check the connection's host.",
                platform=PLATFORM,
                status_code=response.status,
            ) from None

    def _flow_path(self, flow: str, suffix: str = "") -> str:
        self.get_conn()
        return f"{self.rms_api_path}/replicationflows/{quote(flow, safe='')}{suffix}"

    async def _aflow_path(self, flow: str, suffix: str = "") -> str:
        await self.aget_client()
        return f"{self.rms_api_path}/replicationflows/{quote(flow, safe='')}{suffix}"

    # -- replication flows --------------------------------------------------------------------------

    def list_flows(self) -> list[dict[str, Any]]:
        self.get_conn()
        return as_list(self._json("GET", f"{self.rms_api_path}/replicationflows"))

    def get_flow(self, flow: str) -> dict[str, Any]:
        return self._json("GET", self._flow_path(flow))

    def get_flow_configuration(self, flow: str) -> dict[str, Any]:
        return self._json("GET", self._flow_path(flow, "/configuration"))

    def flow_monitor(self, flow: str) -> dict[str, Any]:
        """The flow's runtime monitor; DI answers an array even with ``name=`` (empty: never deployed)."""
        self.get_conn()
        rows = as_list(self._json("GET", f"{self.rms_api_path}/replicationflowMonitors", params={"name": flow}))
        return next((row for row in rows if row.get("name") == flow), rows[0] if rows else {})

    def task_monitors(self, flow: str) -> list[dict[str, Any]]:
        return as_list(self._json("GET", self._flow_path(flow, "/taskMonitors")))

    async def atask_monitors(self, flow: str) -> list[dict[str, Any]]:
        return as_list(await self._ajson("GET", await self._aflow_path(flow, "/taskMonitors")))

    def change_request_status(self, flow: str) -> dict[str, Any]:
        """The status of the flow's LAST change request, by anyone ({} while DI shows none: 404)."""
        try:
            return self._json("GET", self._flow_path(flow, "/changerequeststatus"))
        except NotFoundError:
            return {}

    async def achange_request_status(self, flow: str) -> dict[str, Any]:
        try:
            return await self._ajson("GET", await self._aflow_path(flow, "/changerequeststatus"))
        except NotFoundError:
            return {}

    def task_names(self, flow: str) -> list[str]:
        """The flow's task names from its definition (the names the selective requests take)."""
        definition = self.get_flow(flow)
        names = [str(task.get("name")) for task in flow_tasks(definition) if task.get("name")]
        if not names:  # some releases only show tasks at runtime
            names = [str(task.get("name")) for task in self.task_monitors(flow) if task.get("name")]
        return names

    def validate_task_names(self, flow: str, tasks: Sequence[str]) -> list[str]:
        """Check ``tasks`` against the flow before any write; an unknown name fails listing the flow's tasks."""
        known = self.task_names(flow)
        unknown = [name for name in tasks if name not in known]
        if unknown:
            raise InvalidRequestError(
                f"Replication flow {flow!r} has no task(s) {', '.join(map(repr, unknown))}; its tasks are "
                f"{', '.join(map(repr, known)) or 'none'} (names are case-sensitive).",
                platform=PLATFORM,
                details={"flow": flow, "unknown": unknown, "tasks": known},
            )
        return list(tasks)

    def request_change(self, flow: str, request_type: str, tasks: Sequence[str] | None = None) -> dict[str, Any]:
        """Send one change request (``PUT ?requestType=``); DI answers 202 ``{"url": ...}``.

        Selective requests carry the task names as a bare JSON array. Never repeated automatically:
        a second request would replace the first in ``changerequeststatus``.
        """
        if request_type not in REQUEST_TYPES:
            raise InvalidRequestError(
                f"requestType {request_type!r} is not one of {', '.join(REQUEST_TYPES)}.", platform=PLATFORM
            )
        selective = request_type in (RUN_SELECTIVE, SUSPEND_SELECTIVE)
        if selective and not tasks:
            raise InvalidRequestError(f"{request_type} needs at least one task name.", platform=PLATFORM)
        body = list(tasks) if selective and tasks else None
        answer = self._json(
            "PUT", self._flow_path(flow), params={"requestType": request_type}, json=body, idempotent=False
        )
        return answer if isinstance(answer, dict) else {}

    # -- pipelines (public API) -----------------------------------------------------------------------

    def start_graph(
        self,
        src: str,
        *,
        name: str | None = None,
        configuration_substitutions: Mapping[str, Any] | None = None,
        trace_level: str | None = None,
    ) -> dict[str, Any]:
        """Start pipeline ``src``; the answer carries the run's ``handle``."""
        self.get_conn()
        body: dict[str, Any] = {"src": src, "configurationSubstitutions": dict(configuration_substitutions or {})}
        if name:
            body["name"] = name
        if trace_level:
            body["traceLevel"] = trace_level
        return self._json("POST", f"{PIPELINE_API_PATH}/runtime/graphs", json=body, idempotent=False)

    def get_graph(self, handle: str) -> dict[str, Any]:
        self.get_conn()
        return self._json("GET", f"{PIPELINE_API_PATH}/runtime/graphs/{quote(handle, safe='')}")

    async def aget_graph(self, handle: str) -> dict[str, Any]:
        await self.aget_client()
        return await self._ajson("GET", f"{PIPELINE_API_PATH}/runtime/graphs/{quote(handle, safe='')}")

    def list_graphs(self) -> list[dict[str, Any]]:
        self.get_conn()
        return as_list(self._json("GET", f"{PIPELINE_API_PATH}/runtime/graphs"))

    def stop_graph(self, handle: str) -> None:
        self.get_conn()
        self._json("DELETE", f"{PIPELINE_API_PATH}/runtime/graphs/{quote(handle, safe='')}", expect_data=False)

    async def astop_graph(self, handle: str) -> None:
        await self.aget_client()
        await self._ajson("DELETE", f"{PIPELINE_API_PATH}/runtime/graphs/{quote(handle, safe='')}", expect_data=False)


def basic_user(login: str | None, tenant: Any, conn_id: str) -> str:
    """The basic-auth user DI expects: ``tenant\\user`` (from the login, or the login plus extra ``tenant``)."""
    login = (login or "").strip()
    if not login:
        raise ConnectionConfigError(
            f"Connection {conn_id!r} has no login: set it to 'tenant\\user' (e.g. 'default\\etl_user')."
        )
    if "\\" in login:
        tenant_part, _, user = login.partition("\\")
        if not tenant_part or not user:
            raise ConnectionConfigError(
                f"Connection {conn_id!r}: login {login!r} must be 'tenant\\user' with both parts non-empty."
            )
        return login
    if tenant in (None, ""):
        raise ConnectionConfigError(
            f"Connection {conn_id!r}: login {login!r} names no tenant. Set Login to 'tenant\\user' "
            "(e.g. 'default\\etl_user') or put the tenant in extra 'tenant'."
        )
    return f"{str(tenant).strip()}\\{login}"


def flow_tasks(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The task list of a flow definition (``oneSourceOneTargetTasks``, or ``tasks`` in other versions)."""
    for key in ("oneSourceOneTargetTasks", "tasks", "replicationTasks"):
        value = definition.get(key) if isinstance(definition, Mapping) else None
        if isinstance(value, list):
            return [task for task in value if isinstance(task, Mapping)]
    return []


def as_list(payload: Any) -> list[dict[str, Any]]:
    """A bare JSON array, or the array inside a ``{"value"|"items"|"results": [...]}`` envelope."""
    if isinstance(payload, list):
        return [row for row in payload if isinstance(row, dict)]
    if isinstance(payload, Mapping):
        for key in ("value", "items", "results", "graphs"):
            if isinstance(payload.get(key), list):
                return [row for row in payload[key] if isinstance(row, dict)]
        return [dict(payload)] if payload else []
    return []


def _with_login_hint(err: AuthenticationError) -> AuthenticationError:
    if LOGIN_HINT in err.message:
        return err
    return AuthenticationError(
        f"{err.message} {LOGIN_HINT}", platform=PLATFORM, status_code=err.status_code, details=err.details
    )
