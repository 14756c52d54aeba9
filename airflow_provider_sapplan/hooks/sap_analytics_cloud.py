"""SAP Analytics Cloud: one connection for the Data Import API, Multi Actions and data-management schedules.

What is specific to SAC lives here: the connection (tenant URL, OAuth client, token URL, ``tenant``
letter, optional user refresh token), the ``x-sap-sac-custom-auth`` header, the endpoints and their
answers, and SAC's error texts (``[nnnn]`` numbers, HTML login pages) turned into messages that name
the fix. Tokens (client credentials or refresh-token grant), CSRF (``GET /api/v1/csrf``, cookies kept,
one re-fetch on ``403 x-csrf-token: required``), retries and HTTP error mapping come from the core.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_sapplan.connections import form_for
from airflow_provider_sapplan.core.hook import PlatformHook, extra_field, parse_timeout
from airflow_provider_sapplan.core.http import ClientConfig
from airflow_provider_sapplan.core.oauth_grants import ClientCredentialsGrant, RefreshTokenGrant
from airflow_provider_sapplan.core.reconcile import send_or_reconcile
from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ResourceBusyError,
    SapplanError,
)

PLATFORM = "SAP Analytics Cloud"
CUSTOM_AUTH_HEADERS = {"x-sap-sac-custom-auth": "true"}
CSRF_PATH = "api/v1/csrf"
DATA_IMPORT = "api/v1/dataimport"
MULTI_ACTIONS = "api/v1/multiActions"
DATA_INTEGRATION = "sap/fpa/services/rest/fpa/dataintegration"
IMPORT_TYPES = ("factData", "masterData", "masterFactData", "privateFactData")
IMPORT_METHODS = ("Update", "Append", "CleanAndReplace", "DeleteAndUpsert", "DropAndInsert")

#: Error numbers that mean "too many active import jobs, try later" (user / model limit).
BUSY_ERRORS = frozenset({1002, 1007})

ERROR_HINTS: dict[int, str] = {
    1001: "The action is not supported for this model or import type.",
    1002: "This user has reached the maximum of active import jobs: delete finished or orphaned jobs "
    "(DELETE /api/v1/dataimport/jobs/<id>) or wait for running ones.",
    1003: "The job is not in the state this call needs (push rows, then validate, then run).",
    1004: "A mapped column is not a column of the model; compare the mapping with the model's metadata.",
    1005: "SAC cannot infer the import type; pass import_type explicitly.",
    1006: "The request body is invalid; check mapping, default_values and job_settings.",
    1007: "The model has reached its maximum of active import jobs (SAP Note 3491183): wait for them "
    "or delete orphaned jobs.",
    1010: "The same request is already in progress; wait for it instead of sending it again.",
    1011: "The job holds no valid rows: check the source's columns and values.",
    1305: "The endpoint does not exist: check the path (there is no per-model job list).",
    3401: "The OAuth client is not allowed to call this API: in System > Administration > App Integration "
    "give the client the API access it needs (purpose 'API Access' for Data Import, 'Interactive Usage' "
    "with a refresh token for Multi Actions and the data-management service).",
}

STATUS_HINTS: dict[int, str] = {
    401: "The token was rejected: check the OAuth client id and secret, and that the token URL belongs to "
    "the same tenant and region as the host.",
    403: "The OAuth client or user lacks the permission for this call (App Integration > the client's "
    "access, or the user's roles on the model).",
    404: "Check the model id, job id or Multi Action id (package:object, the colon is literal).",
}

_ERROR_NUMBER = re.compile(r"\[(\d{3,5})\]")
_HOST_REGION = re.compile(r"^[^.]+\.([a-z]{2}\d{2,3}(?:-\d+)?)\.(?:hcs\.cloud\.sap|sapanalytics\.cloud)$")
_TOKEN_REGION = re.compile(r"\.authentication\.(?:sap\.)?([a-z]{2}\d{2,3}(?:-\d+)?)\.hana\.ondemand\.com$")


def error_number(text: str | None) -> int | None:
    """The SAC error number embedded in a message (``"[1007] Model reached ..."`` -> 1007)."""
    found = _ERROR_NUMBER.search(text or "")
    return int(found.group(1)) if found else None


def region_of_host(host: str) -> str | None:
    return _region(_HOST_REGION, host)


def region_of_token_url(url: str) -> str | None:
    return _region(_TOKEN_REGION, url)


def _region(pattern: re.Pattern[str], url: str) -> str | None:
    hostname = urlsplit(url if "://" in url else f"https://{url}").hostname or ""
    found = pattern.search(hostname)
    return found.group(1) if found else None


def read_key(payload: Any, *names: str) -> Any:
    """A value from a JSON object by any of ``names``, compared case-insensitively (SAC mixes cases)."""
    if not isinstance(payload, Mapping):
        return None
    lowered = {str(key).lower(): value for key, value in payload.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value not in (None, ""):
            return value
    return None


def login_page_message(what: str) -> str:
    return (
        f"{PLATFORM} answered {what} with an HTML login page instead of data: the call was not authenticated "
        "as an API call. Check (1) the OAuth client's purpose in System > Administration > App Integration "
        "('API Access' for the Data Import API; the data-management service and Multi Actions need a "
        "user-context token: set the connection's refresh_token from an 'Interactive Usage' client), "
        "(2) tenants that sign users in through a SAML identity provider accept only user-context tokens "
        "there, (3) a proxy that strips the x-sap-sac-custom-auth header."
    )


def translate_error(err: SapplanError, what: str) -> SapplanError:
    """SAC's answer turned into an error whose message names the fix (error numbers, login pages)."""
    message = err.message
    details = dict(err.details)
    if isinstance(err, AuthenticationError) and err.status_code == 200:
        return AuthenticationError(login_page_message(what), platform=PLATFORM, status_code=200, details=details)
    number = error_number(message)
    if number is None and "oauth client is not allowed" in message.lower():
        number = 3401  # the data-management service words it without the number
    if number is None:
        return err
    details["sac_error"] = number
    hint = ERROR_HINTS.get(number)
    text = f"{message} {hint}" if hint and hint not in message else message
    if number in BUSY_ERRORS:
        return ResourceBusyError(text, platform=PLATFORM, status_code=err.status_code, details=details)
    if number == 3401:
        return PermissionDeniedError(text, platform=PLATFORM, status_code=err.status_code, details=details)
    return type(err)(text, platform=err.platform, status_code=err.status_code, details=details)


class SapAnalyticsCloudHook(PlatformHook):
    """Talks to one SAP Analytics Cloud tenant.

    Connection (type ``sap_analytics_cloud``): Host = the tenant URL
    (``https://<tenant>.<region>.hcs.cloud.sap``); Login/Password = the OAuth client id and secret;
    extras ``token_url`` (required), ``tenant`` (the data-management service's ``tenant=`` letter),
    ``refresh_token`` (optional user-context token: Multi Actions need it) and ``timeout``.
    """

    conn_name_attr = "sap_analytics_cloud_conn_id"
    default_conn_name = "sap_analytics_cloud_default"
    conn_type = "sap_analytics_cloud"
    hook_name = "SAP Analytics Cloud"

    def __init__(self, sap_analytics_cloud_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=sap_analytics_cloud_conn_id, **kwargs)
        self.sap_analytics_cloud_conn_id = sap_analytics_cloud_conn_id
        self.tenant: str | None = None
        self.tenant_url: str | None = None
        self.user_token = False

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return form_for(cls.conn_type).form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return form_for(cls.conn_type).field_behaviour()

    # -- connection -------------------------------------------------------------------------------

    def remember_connection(self, conn: Any, extras: dict[str, Any]) -> None:
        tenant = extra_field(extras, self.conn_type, "tenant")
        self.tenant = str(tenant).strip() if tenant else None
        self.user_token = bool(extra_field(extras, self.conn_type, "refresh_token"))
        if conn.host:
            host = conn.host if "://" in conn.host else f"https://{conn.host}"
            self.tenant_url = host.rstrip("/")

    def build_client_config(self, conn: Any, extras: dict[str, Any]) -> ClientConfig:
        where = f"Connection {self.conn_id!r}"
        if not conn.host:
            raise ConnectionConfigError(f"{where}: set Host to the tenant URL, e.g. https://acme.eu10.hcs.cloud.sap.")
        if not conn.login or not conn.password:
            raise ConnectionConfigError(
                f"{where}: set Login and Password to the OAuth client id and secret "
                "(System > Administration > App Integration > OAuth Clients)."
            )
        token_url = extra_field(extras, self.conn_type, "token_url")
        if not token_url:
            raise ConnectionConfigError(
                f"{where}: the extra 'token_url' is required: copy the Token URL from System > Administration > "
                "App Integration, e.g. https://acme.authentication.eu10.hana.ondemand.com/oauth/token."
            )
        token_url = str(token_url).strip()
        host_region, token_region = region_of_host(str(self.tenant_url)), region_of_token_url(token_url)
        if host_region and token_region and host_region != token_region:
            raise ConnectionConfigError(
                f"{where}: the token URL is in region {token_region} but the tenant is in {host_region}; a token "
                "from another region is rejected. Copy the Token URL shown on the tenant's App Integration page."
            )
        refresh_token = extra_field(extras, self.conn_type, "refresh_token")
        common: dict[str, Any] = {
            "platform": PLATFORM,
            "token_url": token_url,
            "client_id": str(conn.login),
            "client_secret": str(conn.password),
            "api_headers": CUSTOM_AUTH_HEADERS,
        }
        auth: Any = (
            RefreshTokenGrant(refresh_token=str(refresh_token), conn_id=self.conn_id, **common)
            if refresh_token
            else ClientCredentialsGrant(**common)
        )
        return ClientConfig(
            platform=PLATFORM,
            base_url=str(self.tenant_url),
            auth=auth,
            status_hints=STATUS_HINTS,
            csrf_fetch_path=CSRF_PATH,
            timeout=parse_timeout(extra_field(extras, self.conn_type, "timeout"), self.conn_id) or (10.0, 120.0),
        )

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except SapplanError as err:
            raise translate_error(err, what) from None

    def check_connection(self) -> str:
        with self._errors("the model list"):
            models = self.list_models()
        kind = "user-context (refresh token)" if self.user_token else "client credentials"
        return f"Connected to SAP Analytics Cloud with a {kind} token; {len(models)} model(s) open to data import."

    # -- Data Import API ----------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        with self._errors("GET /api/v1/dataimport/models"):
            payload = self.client.get_json(f"{DATA_IMPORT}/models")
        found = read_key(payload, "models", "value")
        return list(found if isinstance(found, list) else payload if isinstance(payload, list) else [])

    def model_metadata(self, model_id: str) -> dict[str, Any]:
        with self._errors(f"the metadata of model {model_id}"):
            return self.client.get_json(f"{DATA_IMPORT}/models/{quote(model_id)}/metadata")

    def model_columns(self, model_id: str, import_type: str) -> list[str]:
        """Column names the model accepts for ``import_type``, from its metadata."""
        metadata = self.model_metadata(model_id)
        section = read_key(metadata, import_type)
        columns = read_key(section, "columns") if isinstance(section, Mapping) else None
        if not isinstance(columns, list):
            available = sorted(k for k in metadata if isinstance(metadata.get(k), Mapping))
            raise InvalidRequestError(
                f"Model {model_id} offers no {import_type!r} import (its metadata has "
                f"{', '.join(available) or 'no import types'}); choose another import_type.",
                platform=PLATFORM,
            )
        return [str(read_key(c, "columnName", "name")) for c in columns if read_key(c, "columnName", "name")]

    def create_import_job(self, model_id: str, import_type: str, body: Mapping[str, Any]) -> str:
        """Create an import job; 1002/1007 (too many active jobs) raise ResourceBusyError."""
        path = f"{DATA_IMPORT}/models/{quote(model_id)}/{import_type}"
        with self._errors(f"the job creation for model {model_id}"):
            payload = self.client.post_json(path, json=dict(body), idempotent=False)
        job_id = read_key(payload, "jobID", "jobId", "id")
        if not job_id:
            raise SapplanError(
                f"{PLATFORM} created an import job for model {model_id} but returned no job id ({payload!r}).",
                platform=PLATFORM,
            )
        return str(job_id)

    def push_rows(self, job_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Send one batch of rows to a job (not repeated after a timeout: rows would be staged twice)."""
        with self._errors(f"the rows pushed to job {job_id}"):
            return self.client.post_json(f"{DATA_IMPORT}/jobs/{job_id}", json={"Data": rows}, idempotent=False)

    def validate_import_job(self, job_id: str) -> dict[str, Any]:
        """Validate the staged rows (a check that writes nothing: safe to resend)."""
        with self._errors(f"the validation of job {job_id}"):
            return self.client.post_json(f"{DATA_IMPORT}/jobs/{job_id}/validate", json={}, idempotent=True)

    def run_import_job(self, job_id: str, override_execute_with_failed_rows: bool | None = None) -> dict[str, Any]:
        body = (
            {}
            if override_execute_with_failed_rows is None
            else {"overrideExecuteWithFailedRows": bool(override_execute_with_failed_rows)}
        )
        path = f"{DATA_IMPORT}/jobs/{job_id}/run"
        with self._errors(f"the run of job {job_id}"):
            answer = send_or_reconcile(
                lambda: self.client.post_json(path, json=body, idempotent=False),
                lambda: self._import_job_left_staging(job_id),
                what=f"{PLATFORM} import job {job_id}",
            )
        return answer if answer is not None else {"jobStatus": "PROCESSING"}

    def _import_job_left_staging(self, job_id: str) -> bool:
        """Whether a run of this (our own) job was accepted: it is no longer waiting for data or a write."""
        status = str(read_key(self.import_job_status(job_id), "jobStatus", "status") or "").upper()
        return status not in ("READY_FOR_DATA", "READY_FOR_WRITE")

    def import_job_status(self, job_id: str) -> dict[str, Any]:
        with self._errors(f"the status of job {job_id}"):
            return self.client.get_json(f"{DATA_IMPORT}/jobs/{job_id}/status")

    async def aimport_job_status(self, job_id: str) -> dict[str, Any]:
        client = await self.aget_client()
        with self._errors(f"the status of job {job_id}"):
            return await client.get_json(f"{DATA_IMPORT}/jobs/{job_id}/status")

    def invalid_rows(self, job_id: str) -> list[Any]:
        """The job's rejected rows with their reasons (the list inside SAC's answer)."""
        with self._errors(f"the invalid rows of job {job_id}"):
            payload = self.client.get_json(f"{DATA_IMPORT}/jobs/{job_id}/invalidRows")
        if isinstance(payload, list):
            return payload
        for value in (payload or {}).values():
            if isinstance(value, list):
                return value
        return []

    def delete_import_job(self, job_id: str) -> bool:
        """Delete a job (frees an active-job slot); False when it was already gone."""
        try:
            with self._errors(f"the deletion of job {job_id}"):
                self.client.request("DELETE", f"{DATA_IMPORT}/jobs/{job_id}", expect_data=False).close()
        except NotFoundError:
            return False
        return True

    async def adelete_import_job(self, job_id: str) -> None:
        client = await self.aget_client()
        with contextlib.suppress(NotFoundError), self._errors(f"the deletion of job {job_id}"):
            await client.request("DELETE", f"{DATA_IMPORT}/jobs/{job_id}", expect_data=False)

    # -- Multi Actions --------------------------------------------------------------------------------

    def _need_user_token(self, multi_action_id: str) -> None:
        if self._config is None:
            self.get_conn()
        if not self.user_token:
            raise ConnectionConfigError(
                f"Multi Action {multi_action_id} needs a user-context token and connection {self.conn_id!r} "
                "has only client credentials (SAC rejects technical tokens for Multi Actions). Create an OAuth "
                "client with purpose 'Interactive Usage', obtain a refresh token with the authorization-code "
                "flow, and store it in the connection's refresh_token extra."
            )

    @contextlib.contextmanager
    def _multi_action_errors(self, what: str) -> Iterator[None]:
        try:
            with self._errors(what):
                yield
        except (AuthenticationError, PermissionDeniedError) as err:
            if err.status_code in (401, 403):
                raise type(err)(
                    f"{err.message} Multi Actions accept only a user-context token whose user may run this "
                    "Multi Action: check the refresh_token (Interactive Usage client) and the user's "
                    "permissions on the story/planning model.",
                    platform=PLATFORM,
                    status_code=err.status_code,
                    details=err.details,
                ) from None
            raise

    def start_multi_action(self, multi_action_id: str, parameter_values: list[dict[str, Any]]) -> str:
        """Start an execution; returns its id (the colon in ``package:object`` is sent literally)."""
        self._need_user_token(multi_action_id)
        with self._multi_action_errors(f"the start of Multi Action {multi_action_id}"):
            payload = self.client.post_json(
                f"{MULTI_ACTIONS}/{quote(multi_action_id, safe=':')}/executions",
                json={"parameterValues": parameter_values},
                idempotent=False,
            )
        execution_id = read_key(payload, "executionId", "id")
        if not execution_id:
            raise SapplanError(
                f"{PLATFORM} started Multi Action {multi_action_id} but returned no execution id ({payload!r}).",
                platform=PLATFORM,
            )
        return str(execution_id)

    def _execution_path(self, multi_action_id: str, execution_id: str) -> str:
        return f"{MULTI_ACTIONS}/{quote(multi_action_id, safe=':')}/executions/{quote(execution_id)}"

    def multi_action_execution(self, multi_action_id: str, execution_id: str) -> dict[str, Any]:
        with self._multi_action_errors(f"execution {execution_id} of Multi Action {multi_action_id}"):
            return self.client.get_json(self._execution_path(multi_action_id, execution_id))

    async def amulti_action_execution(self, multi_action_id: str, execution_id: str) -> dict[str, Any]:
        client = await self.aget_client()
        with self._multi_action_errors(f"execution {execution_id} of Multi Action {multi_action_id}"):
            return await client.get_json(self._execution_path(multi_action_id, execution_id))

    # -- data-management schedules (internal, unsupported service) ---------------------------------------

    def _tenant_params(self, action: str) -> dict[str, str]:
        if self._config is None:  # triggers built the config in aget_client(): no lookup on the loop
            self.get_conn()
        if not self.tenant:
            raise ConnectionConfigError(
                f"Connection {self.conn_id!r} has no 'tenant' extra: the data-management service needs the tenant "
                "letter (the tenant= parameter the SAC UI sends, e.g. 'G'); without it SAC answers 200 and does "
                "nothing. Open Data Management in the browser's developer tools to read it."
            )
        return {"action": action, "tenant": self.tenant}

    def require_tenant(self) -> str:
        """The connection's tenant letter; an error naming the fix when missing (checked before any call)."""
        return self._tenant_params("")["tenant"]

    @staticmethod
    def _di_data(payload: Any, action: str) -> Any:
        """The ``data`` of a data-management answer; a ``status`` other than 200 inside it is an error."""
        if isinstance(payload, Mapping):
            status = payload.get("status")
            if status not in (None, 200, "200"):
                message = read_key(payload, "message", "errorMessage", "error") or payload
                raise InvalidRequestError(
                    f"{PLATFORM} data-management action {action} answered status {status}: {message}.",
                    platform=PLATFORM,
                    details={"sac_error": error_number(str(message))},
                )
            return payload.get("data", payload)
        return payload

    def _logs_body(self, model_name: str) -> dict[str, Any]:
        return {"jobType": "bpcDataImport", "modelName": model_name, "mappingId": []}

    def schedule_logs(self, model_name: str) -> list[dict[str, Any]]:
        """The model's data-management schedules with their refresh logs (``getScheduleLogsByModel``)."""
        params = self._tenant_params("getScheduleLogsByModel")
        with self._errors(f"the schedule logs of model {model_name}"):
            payload = self.client.post_json(  # a read: safe to repeat after a timeout
                DATA_INTEGRATION, params=params, json=self._logs_body(model_name), idempotent=True
            )
        data = self._di_data(payload, "getScheduleLogsByModel")
        return list(data) if isinstance(data, list) else []

    async def aschedule_logs(self, model_name: str) -> list[dict[str, Any]]:
        client = await self.aget_client()
        params = self._tenant_params("getScheduleLogsByModel")
        with self._errors(f"the schedule logs of model {model_name}"):
            response = await client.request(
                "POST", DATA_INTEGRATION, params=params, json=self._logs_body(model_name), idempotent=True
            )
        data = self._di_data(response.json(), "getScheduleLogsByModel")
        return list(data) if isinstance(data, list) else []

    def run_schedule(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Start a data-management schedule now (``runScheduledJob``); the answer proves nothing by itself."""
        params = self._tenant_params("runScheduledJob")
        with self._errors("the data-management run request"):
            answer = self.client.post_json(DATA_INTEGRATION, params=params, json=dict(payload), idempotent=False)
        data = self._di_data(answer, "runScheduledJob")
        return dict(data) if isinstance(data, Mapping) else {}

    def rejections_csv(self, execution_id: str) -> Iterator[bytes]:
        """The rejected rows of a data-management run, as CSV bytes (``Source,Target,Issue,Value,Records``)."""
        yield from self.client.stream_bytes(
            f"wrangling/api/dm/executions/{quote(execution_id)}/rejections", params={"app": "SAC"}
        )
