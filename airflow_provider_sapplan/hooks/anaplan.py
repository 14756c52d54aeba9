"""Anaplan Integration API v2: connection, authentication and the bulk API calls.

What lives here is only what is specific to Anaplan: its auth service (basic and CA certificate,
``/token/refresh``), its endpoints, its id ranges and task states, chunked files and failure
dumps. Retries, token caching, HTTP errors and login-page detection come from
:mod:`airflow_provider_sapplan.core`.
"""

from __future__ import annotations

import base64
import enum
import logging
import math
import os
import struct
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_sapplan.connections import form_for
from airflow_provider_sapplan.core.auth import Token, TokenAuth, TokenRequest, secret_digest
from airflow_provider_sapplan.core.errors import URL_FIELDS_HINT_KEY
from airflow_provider_sapplan.core.hook import PlatformHook, extra_field
from airflow_provider_sapplan.core.http import ClientConfig
from airflow_provider_sapplan.core.rate_budget import ANAPLAN_REQUESTS_PER_MINUTE
from airflow_provider_sapplan.core.retry import RetryPolicy
from airflow_provider_sapplan.core.storage import local_file, open_for_read, open_for_write, source_size
from airflow_provider_sapplan.core.tls import read_pem
from airflow_provider_sapplan.core.validation import check_verify, parse_requests_per_minute, parse_timeout_value
from airflow_provider_sapplan.exceptions import (
    AuthenticationError,
    ConnectionConfigError,
    DumpUnavailableError,
    InvalidRequestError,
    NameResolutionError,
    NotFoundError,
    SapplanError,
    UploadError,
)
from airflow_provider_sapplan.hooks.anaplan_files import (
    MIB,
    _buffered_chunks,
    _ChunkUploader,
    _file_slices,
)

log = logging.getLogger(__name__)

DEFAULT_AUTH_URL = "https://auth.anaplan.com"
DEFAULT_API_URL = "https://api.anaplan.com/2/0"
MIN_CHUNK_SIZE = 1 * MIB
MAX_CHUNK_SIZE = 50 * MIB
DEFAULT_CHUNK_SIZE = 10 * MIB
MAX_CHUNKS = 1000
PAGE_SIZE = 1000

ANAPLAN_STATUS_HINTS: dict[int, str] = {
    404: "Check the workspace, model and object ids (workspace ids are lowercase, model ids uppercase) "
    "and that this user's model role can see the object.",
    409: "The model is busy (another action or a save is running); if this persists, try later or "
    "serialise DAGs that touch this model with an Airflow pool.",
    422: "The model is archived; unarchive it in Anaplan, then rerun.",
    423: "The model is locked; if this persists, unlock it in Anaplan, then rerun.",
    424: "The model is offline; bring it online in Anaplan, then rerun.",
    425: "The model is in deployed mode; make the change in the development model instead.",
}

# Anaplan answers 409 (busy) and 423 (locked) before acting on a request, so both are safe to wait
# out even for calls that start a task. Budget (RetryPolicy.worst_case_*): 8 sends, at most 246 s of
# backoff (2+4+8+16+32+64+120), 326 s with eight 10 s connect timeouts against an unreachable host;
# a server's Retry-After is honoured up to 120 s per wait.
ANAPLAN_RETRY_POLICY = RetryPolicy(max_attempts=8, initial_wait=2.0, max_wait=120.0).with_statuses(409, 423)


class ActionType(str, enum.Enum):
    """The four kinds of runnable Anaplan objects, valued by their URL segment."""

    IMPORT = "imports"
    EXPORT = "exports"
    PROCESS = "processes"
    ACTION = "actions"

    @classmethod
    def from_id(cls, action_id: str) -> ActionType:
        """Infer the kind from Anaplan's id ranges (112 imports, 116 exports, 117 actions, 118 processes)."""
        prefix = str(action_id)[:3]
        mapping = {"112": cls.IMPORT, "116": cls.EXPORT, "117": cls.ACTION, "118": cls.PROCESS}
        if prefix not in mapping:
            raise SapplanError(
                f"Cannot tell the action type of Anaplan id {action_id!r} from its prefix (112 imports, "
                "116 exports, 117 actions, 118 processes); pass action_type explicitly.",
                platform="Anaplan",
            )
        return mapping[prefix]

    @classmethod
    def coerce(cls, value: ActionType | str) -> ActionType:
        if isinstance(value, ActionType):
            return value
        lowered = str(value).lower()
        for member in cls:
            if lowered in (member.value, member.value.rstrip("s"), member.name.lower()):
                return member
        if lowered in ("process", "processes"):
            return cls.PROCESS
        raise SapplanError(f"Unknown Anaplan action type {value!r}; use one of import, export, process, action.")

    @property
    def label(self) -> str:
        return {"imports": "import", "exports": "export", "processes": "process", "actions": "action"}[self.value]


@dataclass(frozen=True)
class AnaplanCredentials:
    """The parts of an Anaplan connection that authenticate; secrets are hidden from repr."""

    auth_type: str
    auth_url: str
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    certificate: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    private_key_password: str | None = field(default=None, repr=False)
    encoded_data_format: str = "v2"


class AnaplanAuth(TokenAuth):
    """Anaplan's token service: basic or CA-certificate login, ``/token/refresh`` renewal."""

    platform = "Anaplan"

    def __init__(self, credentials: AnaplanCredentials) -> None:
        self.credentials = credentials
        self.auth_kind = credentials.auth_type

    def identity(self) -> tuple[Any, ...]:
        """Basic: user + password digest; certificate: certificate + key + key password + payload format."""
        creds = self.credentials
        if creds.auth_type == "basic":
            return (creds.auth_url.rstrip("/"), creds.login, secret_digest(creds.password))
        return (
            creds.auth_url.rstrip("/"),
            secret_digest(creds.certificate),
            secret_digest(creds.private_key),
            secret_digest(creds.private_key_password),
            creds.encoded_data_format,
        )

    def rejection_hint(self) -> str:
        if self.credentials.auth_type == "basic":
            return (
                "Check Login (the Anaplan user's email) and Password, and that the user is not locked and may "
                "use basic auth (SSO-only users need certificate auth)."
            )
        return (
            "Check that 'certificate' is the CA certificate registered for this Anaplan user, that "
            "'private_key' is its matching key (and 'private_key_password' opens it), and "
            "'encoded_data_format' (v2 unless your tenant needs v1)."
        )

    def authenticate_request(self) -> TokenRequest:
        creds = self.credentials
        url = creds.auth_url.rstrip("/") + "/token/authenticate"
        if creds.auth_type == "basic":
            raw = f"{creds.login}:{creds.password}".encode()
            return TokenRequest("POST", url, headers={"Authorization": "Basic " + base64.b64encode(raw).decode()})
        return TokenRequest(
            "POST",
            url,
            headers={"Authorization": "CACertificate " + _certificate_header(creds.certificate or "")},
            json=_certificate_payload(creds),
        )

    def refresh_request(self, token: Token) -> TokenRequest | None:
        url = self.credentials.auth_url.rstrip("/") + "/token/refresh"
        return TokenRequest("POST", url, headers={"Authorization": f"AnaplanAuthToken {token.value}"})

    def parse_token(self, payload: Any) -> Token:
        info = payload.get("tokenInfo") if isinstance(payload, dict) else None
        if not info or not info.get("tokenValue"):
            status = payload.get("statusMessage") if isinstance(payload, dict) else None
            raise AuthenticationError(
                f"Anaplan's auth service returned no token ({status or 'no status message'}). "
                "Check the connection's credentials.",
                platform="Anaplan",
            )
        expires_at = float(info.get("expiresAt", 0)) / 1000.0 or time.time() + 35 * 60
        return Token(value=info["tokenValue"], expires_at=expires_at)

    def authorization_header(self, token: Token) -> dict[str, str]:
        return {"Authorization": f"AnaplanAuthToken {token.value}"}


def _certificate_header(certificate_pem: str) -> str:
    """The DER body of the PEM certificate, base64 (the form Anaplan's guide shows)."""
    lines = [line.strip() for line in certificate_pem.strip().splitlines()]
    body = "".join(line for line in lines if line and not line.startswith("-----"))
    return body


def _certificate_payload(creds: AnaplanCredentials) -> dict[str, str]:
    """A fresh signed nonce; v2 prefixes it with the 8-byte big-endian epoch second."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    password = creds.private_key_password.encode() if creds.private_key_password else None
    try:
        key = serialization.load_pem_private_key((creds.private_key or "").encode(), password=password)
    except TypeError as err:
        if password is None:
            raise ConnectionConfigError(
                "The Anaplan connection's private key is encrypted: set extra 'private_key_password'."
            ) from None
        raise ConnectionConfigError(
            f"The Anaplan connection's private key is not encrypted ({err}): leave extra 'private_key_password' empty."
        ) from None
    except ValueError as err:
        if password is not None and "password" in str(err).lower():
            raise ConnectionConfigError(
                "Extra 'private_key_password' does not open the Anaplan connection's private key; check the "
                "password (or that 'private_key' is the key it belongs to)."
            ) from None
        raise ConnectionConfigError(
            f"The Anaplan connection's private key could not be loaded ({err}); it must be an RSA key in PEM "
            "form (PKCS#1 or PKCS#8), with 'private_key_password' set if the key is encrypted."
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConnectionConfigError("The Anaplan connection's private key must be an RSA key.")
    if creds.encoded_data_format == "v2":
        nonce = struct.pack(">q", int(time.time())) + os.urandom(92)
    else:
        nonce = os.urandom(100)
    signature = key.sign(nonce, padding.PKCS1v15(), hashes.SHA512())
    payload = {
        "encodedData": base64.b64encode(nonce).decode(),
        "encodedSignedData": base64.b64encode(signature).decode(),
    }
    if creds.encoded_data_format == "v2":
        payload = {"encodedDataFormat": "v2", **payload}
    return payload


class AnaplanHook(PlatformHook):
    """Talks to the Anaplan Integration API v2 for one connection.

    :param anaplan_conn_id: the Airflow connection (type ``anaplan``).
    :param workspace_id: default workspace for calls; falls back to the connection's ``workspace_id``.
    :param model_id: default model for calls; falls back to the connection's ``model_id``.
    """

    conn_name_attr = "anaplan_conn_id"
    default_conn_name = "anaplan_default"
    conn_type = "anaplan"
    hook_name = "Anaplan"
    url_fields = "the extras 'auth_url' (login) and 'api_url' (API; both Anaplan's public URLs when empty)"

    def __init__(
        self,
        anaplan_conn_id: str = default_conn_name,
        *,
        workspace_id: str | None = None,
        model_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=anaplan_conn_id, **kwargs)
        self.anaplan_conn_id = anaplan_conn_id
        self._workspace_id = workspace_id
        self._model_id = model_id
        self._default_workspace: str | None = None
        self._default_model: str | None = None

    # -- connection form: declared in connections/, rendered here for Airflow 2.x -------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return form_for(cls.conn_type).form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return form_for(cls.conn_type).field_behaviour()

    # -- connection -----------------------------------------------------------------------------

    def remember_connection(self, conn: Any, extras: dict[str, Any]) -> None:
        self._default_workspace = extra_field(extras, "anaplan", "workspace_id")
        self._default_model = extra_field(extras, "anaplan", "model_id")

    def build_client_config(self, conn: Any, extras: dict[str, Any]) -> ClientConfig:
        credentials = self._credentials(conn, extras)
        api_url = self.use_url(
            "extra 'api_url'", extra_field(extras, "anaplan", "api_url", DEFAULT_API_URL), example=DEFAULT_API_URL
        )
        label = self.connection_label
        hints = {
            **ANAPLAN_STATUS_HINTS,
            401: "Anaplan rejected the token of a fresh login; check that the user still has access to this "
            "workspace and model.",
            URL_FIELDS_HINT_KEY: self.url_fields,
        }
        return ClientConfig(
            platform="Anaplan",
            base_url=api_url,
            auth=AnaplanAuth(credentials),
            policy=ANAPLAN_RETRY_POLICY,
            status_hints=hints,
            timeout=parse_timeout_value(extra_field(extras, "anaplan", "timeout"), connection=label) or (10.0, 300.0),
            verify=check_verify(extra_field(extras, "anaplan", "verify"), connection=label),
            pool_size=16,
            requests_per_minute=parse_requests_per_minute(
                extra_field(extras, "anaplan", "requests_per_minute"),
                default=ANAPLAN_REQUESTS_PER_MINUTE,
                connection=label,
            ),
        )

    def _credentials(self, conn: Any, extras: dict[str, Any]) -> AnaplanCredentials:
        label = self.connection_label
        where = label[:1].upper() + label[1:]
        auth_type = str(extra_field(extras, "anaplan", "auth_type", "basic")).strip().lower()
        auth_url = self.use_url(
            "extra 'auth_url'", extra_field(extras, "anaplan", "auth_url", DEFAULT_AUTH_URL), example=DEFAULT_AUTH_URL
        )
        if auth_type == "basic":
            if not conn.login or not conn.password:
                raise ConnectionConfigError(
                    f"{where} uses basic auth but has no login or password; fill in "
                    "Login (the Anaplan user's email) and Password, or set auth_type to 'certificate'."
                )
            return AnaplanCredentials("basic", auth_url, login=conn.login, password=conn.password)
        if auth_type == "certificate":
            certificate = read_pem(
                extra_field(extras, "anaplan", "certificate"), "extra 'certificate'", "certificate", connection=label
            )
            key_field = "extra 'private_key'" if extra_field(extras, "anaplan", "private_key") else "Password"
            private_key = read_pem(
                extra_field(extras, "anaplan", "private_key") or conn.password,
                key_field,
                "private key",
                connection=label,
            )
            if not certificate or not private_key:
                missing = "certificate" if not certificate else "private_key"
                raise ConnectionConfigError(
                    f"{where} uses certificate auth but its '{missing}' extra is empty; paste "
                    "the PEM text (or a path to the PEM file) into it."
                )
            data_format = str(extra_field(extras, "anaplan", "encoded_data_format", "v2")).lower()
            if data_format not in ("v1", "v2"):
                raise ConnectionConfigError(
                    f"{where}: encoded_data_format must be 'v2' (default) or 'v1', got {data_format!r}."
                )
            return AnaplanCredentials(
                "certificate",
                auth_url,
                login=conn.login,
                certificate=certificate,
                private_key=private_key,
                private_key_password=extra_field(extras, "anaplan", "private_key_password"),
                encoded_data_format=data_format,
            )
        raise ConnectionConfigError(f"{where}: auth_type must be 'basic' or 'certificate', got {auth_type!r}.")

    def model_ids(self, workspace_id: str | None = None, model_id: str | None = None) -> tuple[str, str]:
        """The workspace and model to use: given here, else the hook's, else the connection's."""
        if self._config is None:
            self.get_conn()
        workspace = workspace_id or self._workspace_id or self._default_workspace
        model = model_id or self._model_id or self._default_model
        if not workspace or not model:
            missing = "workspace_id" if not workspace else "model_id"
            raise ConnectionConfigError(
                f"No Anaplan {missing} given: pass it to the task, or set it in the extras of connection "
                f"{self.conn_id!r}."
            )
        return workspace, model

    def _model_path(self, workspace_id: str | None, model_id: str | None) -> str:
        workspace, model = self.model_ids(workspace_id, model_id)
        return f"workspaces/{workspace}/models/{model}"

    def check_connection(self) -> str:
        """List one workspace (every Anaplan API serves it), then check the default workspace and model."""
        try:
            payload = self.client.get_json("workspaces", params={"limit": 1})
        except (NotFoundError, InvalidRequestError) as err:
            if err.status_code not in (404, 405):
                raise
            raise ConnectionConfigError(
                f"Anaplan answered HTTP {err.status_code} at /workspaces, which every Anaplan API serves: the "
                f"API URL is wrong, not an id or a credential. Check extra 'api_url' (e.g. {DEFAULT_API_URL})."
            ) from None
        total = ((payload.get("meta") or {}).get("paging") or {}).get("totalSize")
        message = f"Connected to Anaplan; {total if total is not None else 'some'} workspace(s) visible."
        workspace, model = self._workspace_id or self._default_workspace, self._model_id or self._default_model
        if workspace:
            try:
                self.client.get_json(f"workspaces/{workspace}")
            except NotFoundError:
                raise ConnectionConfigError(
                    f"The credentials work, but the default workspace_id {workspace!r} does not exist or this "
                    "user cannot see it (workspace ids are 32 lowercase hex characters); fix extra 'workspace_id'."
                ) from None
            message += f" Workspace {workspace} found."
            if model:
                try:
                    self.client.get_json(f"workspaces/{workspace}/models/{model}")
                except NotFoundError:
                    raise ConnectionConfigError(
                        f"The credentials work, but the default model_id {model!r} does not exist in workspace "
                        f"{workspace!r} or this user has no role in it (model ids are 32 uppercase hex "
                        "characters); fix extra 'model_id'."
                    ) from None
                message += f" Model {model} found."
        elif model:
            message += " (model_id is set without workspace_id, so it was not checked.)"
        return message

    # -- listing and names ------------------------------------------------------------------------

    def _paged(self, path: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            payload = self.client.get_json(path, params={"limit": PAGE_SIZE, "offset": offset})
            page = listed(payload, key)
            items.extend(page)
            if not isinstance(payload, dict):
                return items  # a bare array is the whole list (the process list is documented so)
            paging = (payload.get("meta") or {}).get("paging") or {}
            total = paging.get("totalSize")
            offset += len(page)
            if not page or total is None or offset >= int(total):
                return items

    def list_workspaces(self) -> list[dict[str, Any]]:
        return self._paged("workspaces", "workspaces")

    def list_models(self, workspace_id: str | None = None) -> list[dict[str, Any]]:
        self.get_conn()
        workspace = workspace_id or self._workspace_id or self._default_workspace
        return self._paged(f"workspaces/{workspace}/models" if workspace else "models", "models")

    def list_objects(self, kind: str, workspace_id: str | None = None, model_id: str | None = None) -> list[dict]:
        """List ``files``, ``imports``, ``exports``, ``processes`` or ``actions`` of a model."""
        if kind not in ("files", "imports", "exports", "processes", "actions"):
            raise SapplanError(f"Unknown Anaplan object kind {kind!r}.")
        return self._paged(f"{self._model_path(workspace_id, model_id)}/{kind}", kind)

    def list_files(self, workspace_id: str | None = None, model_id: str | None = None) -> list[dict]:
        return self.list_objects("files", workspace_id, model_id)

    def list_imports(self, workspace_id: str | None = None, model_id: str | None = None) -> list[dict]:
        return self.list_objects("imports", workspace_id, model_id)

    def list_exports(self, workspace_id: str | None = None, model_id: str | None = None) -> list[dict]:
        return self.list_objects("exports", workspace_id, model_id)

    def list_processes(self, workspace_id: str | None = None, model_id: str | None = None) -> list[dict]:
        return self.list_objects("processes", workspace_id, model_id)

    def list_actions(self, workspace_id: str | None = None, model_id: str | None = None) -> list[dict]:
        return self.list_objects("actions", workspace_id, model_id)

    def resolve_id(self, kind: str, name: str, workspace_id: str | None = None, model_id: str | None = None) -> str:
        """The id of the one object of ``kind`` named exactly ``name``; errors list the candidates."""
        objects = self.list_objects(kind, workspace_id, model_id)
        matches = [obj for obj in objects if obj.get("name") == name]
        if len(matches) == 1:
            return str(matches[0]["id"])
        singular = kind.rstrip("s") if kind != "processes" else "process"
        if not matches:
            names = sorted({str(obj.get("name")) for obj in objects})
            close = [n for n in names if n.lower() == name.lower() or name.lower() in n.lower()]
            shown = close or names[:20]
            raise NameResolutionError(
                f"No Anaplan {singular} named {name!r} in this model (names are matched exactly). "
                f"{'Similar' if close else 'Available'}: {', '.join(map(repr, shown)) or 'none'}.",
                platform="Anaplan",
                details={"name": name, "candidates": shown},
            )
        ids = [str(obj["id"]) for obj in matches]
        raise NameResolutionError(
            f"{len(matches)} Anaplan {kind} are named {name!r} (ids {', '.join(ids)}); pass the id instead.",
            platform="Anaplan",
            details={"name": name, "candidates": ids},
        )

    # -- tasks ------------------------------------------------------------------------------------

    def _action_path(
        self, action_type: ActionType | str, action_id: str, workspace_id: str | None, model_id: str | None
    ) -> str:
        kind = ActionType.coerce(action_type)
        return f"{self._model_path(workspace_id, model_id)}/{kind.value}/{action_id}"

    def run_action(
        self,
        action_type: ActionType | str,
        action_id: str,
        *,
        locale: str = "en_US",
        mapping_parameters: Mapping[str, str] | None = None,
        workspace_id: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        """Start a task for an import, export, process or action; returns the task (with ``taskId``)."""
        body = task_request_body(locale, mapping_parameters)
        path = self._action_path(action_type, action_id, workspace_id, model_id) + "/tasks"
        payload = self.client.post_json(path, json=body, idempotent=False)
        task = payload.get("task") or payload
        if not task.get("taskId"):
            raise SapplanError(f"Anaplan started no task for {action_id}: {payload}", platform="Anaplan")
        return task

    def _task_path(
        self,
        action_type: ActionType | str,
        action_id: str,
        task_id: str,
        workspace_id: str | None,
        model_id: str | None,
    ) -> str:
        return self._action_path(action_type, action_id, workspace_id, model_id) + f"/tasks/{task_id}"

    def get_task(
        self,
        action_type: ActionType | str,
        action_id: str,
        task_id: str,
        *,
        workspace_id: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        payload = self.client.get_json(self._task_path(action_type, action_id, task_id, workspace_id, model_id))
        return payload.get("task") or payload

    async def aget_task(
        self,
        action_type: ActionType | str,
        action_id: str,
        task_id: str,
        *,
        workspace_id: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`get_task` for triggers: no blocking call on the event loop."""
        client = await self.aget_client()  # also loads the connection's default workspace and model
        payload = await client.get_json(self._task_path(action_type, action_id, task_id, workspace_id, model_id))
        return payload.get("task") or payload

    def list_tasks(
        self,
        action_type: ActionType | str,
        action_id: str,
        *,
        workspace_id: str | None = None,
        model_id: str | None = None,
    ) -> list[dict[str, Any]]:
        path = self._action_path(action_type, action_id, workspace_id, model_id) + "/tasks"
        payload = self.client.get_json(path)
        if isinstance(payload, dict) and payload.get("tasks") is None and payload.get("task"):
            return [payload["task"]]
        return listed(payload, "tasks")

    def cancel_task(
        self,
        action_type: ActionType | str,
        action_id: str,
        task_id: str,
        *,
        workspace_id: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        """Ask Anaplan to cancel a task (DELETE on the task); it passes through CANCELLING to CANCELLED."""
        path = self._task_path(action_type, action_id, task_id, workspace_id, model_id)
        response = self.client.request("DELETE", path)
        payload = response.json() if response.content else {}
        return payload.get("task") or payload

    async def acancel_task(
        self,
        action_type: ActionType | str,
        action_id: str,
        task_id: str,
        *,
        workspace_id: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`cancel_task` for triggers."""
        client = await self.aget_client()
        response = await client.request(
            "DELETE", self._task_path(action_type, action_id, task_id, workspace_id, model_id)
        )
        payload = response.json()
        return payload.get("task") or payload

    # -- dumps ------------------------------------------------------------------------------------

    def _dump_path(
        self,
        action_type: ActionType | str,
        action_id: str,
        task_id: str,
        object_id: str | None,
        workspace_id: str | None,
        model_id: str | None,
    ) -> str:
        base = self._task_path(action_type, action_id, task_id, workspace_id, model_id)
        if ActionType.coerce(action_type) is ActionType.PROCESS:
            if not object_id:
                raise SapplanError("A process dump needs the objectId of the failed step.", platform="Anaplan")
            return f"{base}/dumps/{object_id}"
        return f"{base}/dump"

    def iter_dump(
        self,
        action_type: ActionType | str,
        action_id: str,
        task_id: str,
        *,
        object_id: str | None = None,
        workspace_id: str | None = None,
        model_id: str | None = None,
    ) -> Iterator[bytes]:
        """Stream a failure dump chunk by chunk (import dump, or a process step's dump by ``object_id``).

        A dump that was removed or replaced by a newer run answers 404 and raises
        :class:`DumpUnavailableError`.
        """
        path = self._dump_path(action_type, action_id, task_id, object_id, workspace_id, model_id)
        try:
            chunks = listed(self.client.get_json(f"{path}/chunks"), "chunks")
            for chunk in chunks:
                yield from self.client.stream_bytes(f"{path}/chunks/{chunk['id']}")
        except NotFoundError:
            raise DumpUnavailableError(
                f"The failure dump of Anaplan task {task_id} ({action_id}"
                f"{', step ' + object_id if object_id else ''}) is no longer available: Anaplan keeps one "
                "dump per user and import, replaced by the next run and removed 48 hours after last access.",
                platform="Anaplan",
                status_code=404,
                details={"task_id": task_id, "action_id": action_id, "object_id": object_id},
            ) from None

    def save_dump(self, destination: str | os.PathLike[str], *args: Any, **kwargs: Any) -> int:
        """Write a whole dump (see :meth:`iter_dump`) to a local or object-storage path; returns bytes."""
        written = 0
        with open_for_write(destination) as sink:
            for piece in self.iter_dump(*args, **kwargs):
                sink.write(piece)
                written += len(piece)
        return written

    def dump_head(self, *args: Any, max_lines: int = 10, **kwargs: Any) -> list[str]:
        """The first ``max_lines`` lines of a dump (header included), reading no more than needed."""
        buffer = b""
        for piece in self.iter_dump(*args, **kwargs):
            buffer += piece
            if buffer.count(b"\n") >= max_lines:
                break
        return buffer.decode("utf-8", "replace").splitlines()[:max_lines]

    # -- files ------------------------------------------------------------------------------------

    def get_file(self, file_id: str, workspace_id: str | None = None, model_id: str | None = None) -> dict:
        """The metadata of a model file; NotFoundError (not silent creation) when the model lacks it."""
        files = self.list_files(workspace_id, model_id)
        for item in files:
            if str(item.get("id")) == str(file_id):
                return item
        raise NotFoundError(
            f"Anaplan model has no file with id {file_id}. Anaplan would silently create a new, unused file "
            "for an unknown id, so the upload was refused: check the id (or pass file_name), and upload the "
            "file once through the Anaplan UI if it has never existed.",
            platform="Anaplan",
            status_code=404,
            details={"file_id": str(file_id), "known_files": [str(f.get("id")) for f in files][:50]},
        )

    def upload_file(
        self,
        file_id: str,
        source: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        compress: bool = False,
        max_parallel: int = 4,
        workspace_id: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        """Upload a local or object-storage file to a model file in chunks.

        At most ``max_parallel`` chunks are in flight. Local files are streamed from disk slice by slice
        (memory does not depend on file or chunk size); object-storage sources and gzip hold at most
        64 MiB of chunks in memory. Each chunk PUT is retried by the HTTP core; a chunk that keeps
        failing fails the upload with :class:`UploadError`: the upload is never reported complete
        with a chunk missing.

        :param chunk_size: bytes per chunk before compression, 1 MiB to 50 MiB.
        :param compress: gzip each chunk (smaller transfer, more CPU).
        :return: ``file_id``, ``chunk_count``, ``bytes`` (uncompressed), ``bytes_sent``.
        """
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise UploadError(
                f"chunk_size must be between 1 MiB and 50 MiB (Anaplan's limit), got {chunk_size} bytes.",
                platform="Anaplan",
            )
        if max_parallel < 1:
            raise UploadError("max_parallel must be at least 1.", platform="Anaplan")
        model_path = self._model_path(workspace_id, model_id)
        self.get_file(file_id, workspace_id, model_id)
        size = source_size(source)
        declared = -1
        if size is not None:
            declared = max(1, math.ceil(size / chunk_size))
            if declared > MAX_CHUNKS:
                raise UploadError(
                    f"{source} is {size} bytes: {declared} chunks of {chunk_size} bytes exceed Anaplan's "
                    f"{MAX_CHUNKS}-chunk limit; raise chunk_size (up to 50 MiB).",
                    platform="Anaplan",
                )
        file_path = f"{model_path}/files/{file_id}"
        self.client.post_json(file_path, json={"chunkCount": declared})
        headers = {"Content-Type": "application/x-gzip" if compress else "application/octet-stream"}
        uploaded = _ChunkUploader(self, file_path, headers, compress, max_parallel)
        local = local_file(source)
        if local is not None and size is not None and not compress:
            total, count = uploaded.run(_file_slices(str(local), size, chunk_size), chunk_size, buffered=False)
        else:
            with open_for_read(source) as reader:
                total, count = uploaded.run(_buffered_chunks(reader, chunk_size), chunk_size, buffered=True)
        if declared != -1 and count != declared:
            raise UploadError(
                f"{source} changed during the upload ({count} chunks read, {declared} declared); run it again.",
                platform="Anaplan",
            )
        if declared == -1:
            self.client.post_json(f"{file_path}/complete", json={"id": str(file_id), "chunkCount": count})
        log.info("Uploaded %s bytes to Anaplan file %s in %d chunk(s).", total, file_id, count)
        return {
            "file_id": str(file_id),
            "chunk_count": count,
            "bytes": total,
            "bytes_sent": uploaded.bytes_sent,
        }

    def download_file(
        self,
        file_id: str,
        destination: str | os.PathLike[str],
        *,
        workspace_id: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        """Stream a model file chunk by chunk to a local or object-storage path (memory bounded)."""
        file_path = f"{self._model_path(workspace_id, model_id)}/files/{file_id}"
        chunks = listed(self.client.get_json(f"{file_path}/chunks"), "chunks")
        total = lines = 0
        last = b"\n"
        with open_for_write(destination) as sink:
            for chunk in chunks:
                for piece in self.client.stream_bytes(f"{file_path}/chunks/{chunk['id']}"):
                    sink.write(piece)
                    total += len(piece)
                    lines += piece.count(b"\n")
                    last = piece[-1:] or last
        lines += 0 if last == b"\n" else 1  # a last line without its newline
        log.info(
            "Downloaded Anaplan file %s (%d bytes, %d chunk(s)) to %s.",
            file_id,
            total,
            len(chunks),
            destination,
        )
        return {
            "file_id": str(file_id),
            "chunk_count": len(chunks),
            "bytes": total,
            "lines": lines,
            "destination": str(destination),
        }


def listed(payload: Any, key: str) -> list[dict[str, Any]]:
    """The items of a list answer in any documented shape: ``{key: [...], "meta": ...}`` or a bare array.

    The Anaplan API reference shows most lists wrapped under their name but some (the process list)
    as a bare JSON array; a wrapper without the key (an empty model) is an empty list.
    """
    if isinstance(payload, list):
        return [item for item in payload if isinstance(item, dict)]
    if isinstance(payload, dict):
        return list(payload.get(key) or [])
    raise SapplanError(
        f"Anaplan answered a list request with {type(payload).__name__} {str(payload)[:80]!r} instead of JSON.",
        platform="Anaplan",
    )


def task_request_body(locale: str, mapping_parameters: Mapping[str, str] | None) -> dict[str, Any]:
    """The task POST body; ``localeName`` must come before ``mappingParameters`` (Anaplan requires it)."""
    body: dict[str, Any] = {"localeName": locale or "en_US"}
    if mapping_parameters:
        if not isinstance(mapping_parameters, Mapping):
            raise SapplanError("mapping_parameters must be a dict such as {'Version': 'Actual'}.", platform="Anaplan")
        body["mappingParameters"] = [
            {"entityType": str(entity_type), "entityName": str(entity_name)}
            for entity_type, entity_name in mapping_parameters.items()
        ]
    return body
