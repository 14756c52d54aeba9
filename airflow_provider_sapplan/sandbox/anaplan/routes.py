"""Anaplan sandbox: HTTP face of :class:`~.backend.AnaplanBackend` (auth service, Integration API v2
and the ``/_sandbox/anaplan`` control API).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict
from datetime import datetime, timezone
from functools import partial
from typing import Any
from urllib.parse import urlencode

from ..platform import Platform
from ..routing import Handler, HttpError, Mount, Request, Response, Route
from ..storage import BadEncodingError, Blob, ContentTooLargeError
from .backend import AnaplanBackend
from .models import (
    API_PREFIX,
    AUTH_PREFIX,
    CONTROL_PREFIX,
    DEFAULT_PAGE_LIMIT,
    KINDS,
    MAX_CHUNK_BYTES,
    MAX_CHUNKS,
    MODEL_ID,
    USER_EMAIL,
    USER_PASSWORD,
    WORKSPACE_ID,
    AnaplanAuthError,
    AnaplanError,
    Token,
    _ms,
)


def _api_error(request: Request, status: int, message: str) -> Response:
    """Anaplan's error envelope: ``{"status": {"code": ..., "message": ...}}`` (404 adds path/timestamp)."""
    body: dict[str, Any] = {"status": {"code": status, "message": message}}
    if status == 404:
        body["path"] = request.path
        body["timestamp"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    return Response.json(body, status=status)


def _auth_error(request: Request, status: int, message: str, code: str = "FAILURE_BAD_CREDENTIAL") -> Response:
    """The auth service's error envelope: ``{"status": "FAILURE_...", "statusMessage": ...}``."""
    if status != 401:
        code = "FAILURE"
    return Response.json({"status": code, "statusMessage": message}, status=status)


def _token_from(request: Request) -> str | None:
    """The value of ``Authorization: AnaplanAuthToken <value>``, or None."""
    scheme, _, value = request.header("Authorization").strip().partition(" ")
    if scheme.lower() != "anaplanauthtoken" or not value.strip():
        return None
    return value.strip()


class AnaplanPlatform(Platform):
    """HTTP face of :class:`AnaplanBackend`: auth service, Integration API v2 and control API."""

    name = "anaplan"
    title = "Anaplan (Integration API v2)"

    backend_class = AnaplanBackend

    @property
    def backend(self) -> AnaplanBackend:
        """The Anaplan state."""
        return self._backend

    def connection_hints(self, base_url: str) -> list[str]:
        """The ``AIRFLOW_CONN_ANAPLAN_DEFAULT`` line for this server."""
        conn = {
            "conn_type": "anaplan",
            "login": USER_EMAIL,
            "password": USER_PASSWORD,
            "extra": {
                "auth_url": f"{base_url}{AUTH_PREFIX}",
                "api_url": f"{base_url}{API_PREFIX}",
                "workspace_id": WORKSPACE_ID,
                "model_id": MODEL_ID,
            },
        }
        return [
            f"# {self.title}: basic auth {USER_EMAIL} / {USER_PASSWORD}; any RSA client certificate also works",
            f"export AIRFLOW_CONN_ANAPLAN_DEFAULT='{json.dumps(conn)}'",
        ]

    # ------------------------------------------------------------------------------------- mounts

    def mounts(self) -> list[Mount]:
        """``/anaplan/auth``, ``/anaplan/api/2/0`` and ``/_sandbox/anaplan``."""
        auth = Mount(
            prefix=AUTH_PREFIX,
            platform=self.name,
            auth_endpoint=True,
            errors=_auth_error,
            routes=[
                Route("POST", "/token/authenticate", self._authenticate),
                Route("POST", "/token/refresh", self._refresh),
                Route("GET", "/token/validate", self._validate),
                Route("POST", "/token/logout", self._logout),
            ],
        )
        api = Mount(
            prefix=API_PREFIX,
            platform=self.name,
            routes=self._api_routes(),
            guard=self._guard,
            errors=_api_error,
        )
        control = Mount(
            prefix=CONTROL_PREFIX,
            platform=self.name,
            control=True,
            routes=[
                Route("GET", "/config", self._get_config),
                Route("POST", "/config", self._set_config),
                Route("POST", "/expire_tokens", self._expire_tokens),
                Route("POST", "/model_state", self._set_model_state),
                Route("GET", "/files/{file}", self._control_read_file),
                Route("PUT", "/files/{file}", self._control_write_file),
                Route("GET", "/last_task_request/{action}", self._control_last_request),
                Route("GET", "/tasks", self._control_tasks),
            ],
        )
        return [auth, api, control]

    def _api_routes(self) -> list[Route]:
        m = "/workspaces/{ws}/models/{model}"
        routes = [
            Route("GET", "/workspaces", self._list_workspaces),
            Route("GET", "/workspaces/{ws}", self._get_workspace),
            Route("GET", "/workspaces/{ws}/models", self._list_models),
            Route("GET", "/models", self._list_models),
            Route("GET", "/models/{model}", self._get_model),
            Route("GET", m, self._get_model),
            Route("POST", f"{m}/status", self._model_status),
            Route("GET", f"{m}/files", self._list_files),
            Route("POST", f"{m}/files/{{file}}", self._set_chunk_count),
            Route("PUT", f"{m}/files/{{file}}", self._put_single),
            Route("DELETE", f"{m}/files/{{file}}", self._delete_file),
            Route("POST", f"{m}/files/{{file}}/complete", self._complete),
            Route("GET", f"{m}/files/{{file}}/chunks", self._list_file_chunks),
            Route("GET", f"{m}/files/{{file}}/chunks/{{chunk}}", self._get_file_chunk),
            Route("PUT", f"{m}/files/{{file}}/chunks/{{chunk}}", self._put_chunk),
        ]
        for kind, param in KINDS.items():
            base = f"{m}/{kind}"
            one = f"{base}/{{{param}}}"
            routes += [
                Route("GET", base, partial(self._list_definitions, kind)),
                Route("GET", one, partial(self._get_definition, kind)),
                Route("POST", f"{one}/tasks", partial(self._start_task, kind)),
                Route("GET", f"{one}/tasks", partial(self._list_tasks, kind)),
                Route("GET", f"{one}/tasks/{{task}}", partial(self._get_task, kind)),
                Route("DELETE", f"{one}/tasks/{{task}}", partial(self._cancel_task, kind)),
            ]
        routes += [
            Route("GET", "/models/{model}/processes/{process}", partial(self._get_definition, "processes")),
            Route("GET", f"{m}/imports/{{import}}/tasks/{{task}}/dump", self._import_dump),
            Route("GET", f"{m}/imports/{{import}}/tasks/{{task}}/dump/chunks", self._import_dump_chunks),
            Route("GET", f"{m}/imports/{{import}}/tasks/{{task}}/dump/chunks/{{chunk}}", self._import_dump_chunk),
            Route("GET", f"{m}/processes/{{process}}/tasks/{{task}}/dumps/{{object}}", self._process_dump),
            Route(
                "GET",
                f"{m}/processes/{{process}}/tasks/{{task}}/dumps/{{object}}/chunks",
                self._process_dump_chunks,
            ),
            Route(
                "GET",
                f"{m}/processes/{{process}}/tasks/{{task}}/dumps/{{object}}/chunks/{{chunk}}",
                self._process_dump_chunk,
            ),
        ]
        return [Route(r.method, r.template, self._wrap(r.handler)) for r in routes]

    @staticmethod
    def _wrap(handler: Handler) -> Handler:
        """Turn backend errors into Anaplan error responses."""

        def run(request: Request) -> Response:
            try:
                return handler(request)
            except AnaplanError as exc:
                return _api_error(request, exc.status, exc.message)

        return run

    def _guard(self, request: Request) -> Response | None:
        """Every API call needs a current ``AnaplanAuthToken``."""
        token = _token_from(request)
        if token is None or not self._backend.check_token(token):
            return Response.json({"status": {"code": 401, "message": "Unauthorized"}}, status=401)
        return None

    # ------------------------------------------------------------------------------ JSON helpers

    def _schema(self, request: Request, name: str) -> str:
        model = request.params.get("model")
        scope = f"/models/{model}" if model else ""
        return f"{request.base_url}{API_PREFIX}{scope}/objects/{name}"

    def _ok(self, request: Request, schema: str, **payload: Any) -> Response:
        return Response.json(
            {
                "meta": {"schema": self._schema(request, schema)},
                "status": {"code": 200, "message": "Success"},
                **payload,
            }
        )

    def _paged(self, request: Request, schema: str, key: str, items: list[dict[str, Any]]) -> Response:
        """A list response with ``meta.paging``, honouring ``limit``, ``offset`` and ``sort``.

        For a key in the backend's ``bare_array_lists`` the whole list is a bare JSON array, as the API
        reference documents the process list (no paging, no wrapper).
        """
        if key in self._backend.bare_array_lists:
            return Response.json(items)
        limit = self._int_arg(request, "limit", DEFAULT_PAGE_LIMIT, minimum=1)
        offset = self._int_arg(request, "offset", 0, minimum=0)
        sort = (request.arg("sort") or "").replace(" ", "")
        if sort:
            field_name = sort.lstrip("+-")
            items = sorted(items, key=lambda item: _sort_key(item.get(field_name)), reverse=sort.startswith("-"))
        page = items[offset : offset + limit]
        paging: dict[str, Any] = {"currentPageSize": len(page), "offset": offset, "totalSize": len(items)}
        if offset + limit < len(items):
            paging["next"] = self._page_url(request, limit, offset + limit)
        if offset > 0:
            paging["previous"] = self._page_url(request, limit, max(offset - limit, 0))
        meta = {"paging": paging, "schema": self._schema(request, schema)}
        return Response.json({"meta": meta, "status": {"code": 200, "message": "Success"}, key: page})

    @staticmethod
    def _page_url(request: Request, limit: int, offset: int) -> str:
        query = {k: v[0] for k, v in request.query.items() if k not in ("limit", "offset")}
        query.update({"limit": str(limit), "offset": str(offset)})
        return f"{request.base_url}{request.path}?{urlencode(query)}"

    @staticmethod
    def _int_arg(request: Request, name: str, default: int, minimum: int) -> int:
        raw = request.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise HttpError(_api_error(request, 400, f"Bad Request: {name} must be an integer")) from None
        if value < minimum:
            raise HttpError(_api_error(request, 400, f"Bad Request: {name} must be at least {minimum}"))
        return value

    @staticmethod
    def _flag(request: Request, name: str) -> bool:
        return (request.arg(name) or "").lower() == "true"

    def _json_body(self, request: Request, required: bool = True) -> Any:
        try:
            return request.json(required=required)
        except HttpError as exc:
            message = "Bad Request: the request body must be JSON"
            raise HttpError(_api_error(request, 400, message)) from exc

    @staticmethod
    def _chunk_index(request: Request, not_found: bool) -> int:
        raw = request.params["chunk"]
        index = int(raw) if re.fullmatch(r"[0-9]{1,6}", raw) else -1
        if not 0 <= index < MAX_CHUNKS:
            if not_found:
                raise HttpError(_api_error(request, 404, f"Not Found: chunk {raw}"))
            raise HttpError(_api_error(request, 400, f"Bad Request: chunk id must be between 0 and {MAX_CHUNKS - 1}"))
        return index

    # --------------------------------------------------------------------------------------- auth

    def _authenticate(self, request: Request) -> Response:
        header = request.header("Authorization").strip()
        scheme, _, value = header.partition(" ")
        try:
            if scheme.lower() == "basic":
                token = self._backend.authenticate_basic(header)
            elif scheme.lower() == "cacertificate":
                try:
                    body = request.json(required=True)
                except HttpError:
                    body = None
                token = self._backend.authenticate_certificate(value, body)
            else:
                return _auth_error(request, 401, "Login failed: use Basic or CACertificate authorization")
        except AnaplanAuthError as exc:
            return _auth_error(request, 401, exc.message, exc.status)
        return self._token_response(request, token, "Login successful")

    def _token_response(self, request: Request, token: Token, message: str) -> Response:
        return Response.json(
            {
                "meta": {"validationUrl": f"{request.base_url}{AUTH_PREFIX}/token/validate"},
                "status": "SUCCESS",
                "statusMessage": message,
                "tokenInfo": {
                    "tokenId": token.token_id,
                    "tokenValue": token.value,
                    "expiresAt": _ms(token.expires_at),
                    "refreshTokenId": token.refresh_token_id,
                },
            },
            status=201,
        )

    def _refresh(self, request: Request) -> Response:
        value = _token_from(request)
        if value is None:
            return _auth_error(
                request, 401, "Token refresh failed: AnaplanAuthToken header missing", "FAILURE_INVALID_TOKEN"
            )
        try:
            token = self._backend.refresh_token(value)
        except AnaplanAuthError as exc:
            return _auth_error(request, 401, exc.message, exc.status)
        return self._token_response(request, token, "Token refreshed")

    def _validate(self, request: Request) -> Response:
        value = _token_from(request)
        try:
            if value is None:
                raise AnaplanAuthError(
                    "Token validation failed: AnaplanAuthToken header missing", "FAILURE_INVALID_TOKEN"
                )
            token = self._backend.validate_token(value)
        except AnaplanAuthError as exc:
            return _auth_error(request, 401, exc.message, exc.status)
        return Response.json(
            {
                "meta": {"validationUrl": f"{request.base_url}{AUTH_PREFIX}/token/validate"},
                "status": "SUCCESS",
                "statusMessage": "Token validated",
                "userInfo": {
                    "userId": uuid.uuid5(uuid.NAMESPACE_DNS, token.user).hex,
                    "userGuid": token.user,
                },
                "tokenInfo": {
                    "tokenId": token.token_id,
                    "expiresAt": _ms(token.expires_at),
                    "refreshTokenId": token.refresh_token_id,
                },
            }
        )

    def _logout(self, request: Request) -> Response:
        value = _token_from(request)
        try:
            if value is None:
                raise AnaplanAuthError("Logout failed: AnaplanAuthToken header missing", "FAILURE_INVALID_TOKEN")
            self._backend.logout(value)
        except AnaplanAuthError as exc:
            return _auth_error(request, 401, exc.message, exc.status)
        return Response.empty(204)

    # -------------------------------------------------------------------------- workspaces/models

    def _list_workspaces(self, request: Request) -> Response:
        items = self._backend.list_workspaces(self._flag(request, "tenantDetails"))
        return self._paged(request, "workspace", "workspaces", items)

    def _get_workspace(self, request: Request) -> Response:
        ws = self._backend.get_workspace(request.params["ws"], self._flag(request, "tenantDetails"))
        return self._ok(request, "workspace", workspace=ws)

    def _list_models(self, request: Request) -> Response:
        items = self._backend.list_models(
            request.params.get("ws"), self._flag(request, "modelDetails"), request.arg("s")
        )
        return self._paged(request, "model", "models", items)

    def _get_model(self, request: Request) -> Response:
        model = self._backend.get_model_info(
            request.params.get("ws"), request.params["model"], self._flag(request, "modelDetails")
        )
        return self._ok(request, "model", model=model)

    def _model_status(self, request: Request) -> Response:
        status = self._backend.model_status(request.params["ws"], request.params["model"])
        return self._ok(request, "dimension", requestStatus=status)

    # -------------------------------------------------------------------------------------- files

    def _list_files(self, request: Request) -> Response:
        items = self._backend.list_files(request.params["ws"], request.params["model"])
        return self._paged(request, "file", "files", items)

    def _set_chunk_count(self, request: Request) -> Response:
        body = self._json_body(request)
        if not isinstance(body, dict) or "chunkCount" not in body:
            return _api_error(request, 400, 'Bad Request: the body must be {"chunkCount": N}')
        p = request.params
        file = self._backend.set_chunk_count(p["ws"], p["model"], p["file"], body["chunkCount"])
        return self._ok(request, "file", file=file)

    def _receive(self, request: Request, single: bool) -> Blob:
        """Stream the request body to a blob (gunzipping ``application/x-gzip`` chunks)."""
        if request.body.declared_length is None and not self._backend.accept_chunked_bodies:
            raise HttpError(
                _api_error(request, 411, "Length Required: file content must be sent with a Content-Length header")
            )
        content_type = request.header("Content-Type").split(";")[0].strip().lower()
        gzipped = content_type in ("application/x-gzip", "application/gzip")
        if gzipped and single:
            raise HttpError(
                _api_error(
                    request,
                    415,
                    "Unsupported Media Type: a single-chunk upload cannot be compressed; "
                    "upload gzipped content as chunks",
                )
            )
        length = request.body.declared_length
        if length is not None and not gzipped and length > MAX_CHUNK_BYTES and not single:
            raise HttpError(_api_error(request, 400, "Bad Request: a chunk must not exceed 50 MB uncompressed"))
        limit = MAX_CHUNK_BYTES if not single else 1 << 40
        try:
            return self._backend.store.receive(request.body, limit=limit, gunzip=gzipped)
        except ContentTooLargeError as exc:
            raise HttpError(
                _api_error(request, 400, "Bad Request: a chunk must not exceed 50 MB uncompressed")
            ) from exc
        except BadEncodingError as exc:
            raise HttpError(_api_error(request, 400, f"Bad Request: {exc}")) from exc

    def _put_chunk(self, request: Request) -> Response:
        p = request.params
        index = self._chunk_index(request, not_found=False)
        self._backend.check_upload_target(p["ws"], p["model"], p["file"])
        blob = self._receive(request, single=False)
        self._backend.store_chunk(p["ws"], p["model"], p["file"], index, blob)
        return Response.empty(204)

    def _put_single(self, request: Request) -> Response:
        p = request.params
        self._backend.check_upload_target(p["ws"], p["model"], p["file"])
        blob = self._receive(request, single=True)
        self._backend.store_single(p["ws"], p["model"], p["file"], blob)
        return Response.empty(204)

    def _complete(self, request: Request) -> Response:
        self._json_body(request, required=False)
        p = request.params
        file = self._backend.complete_upload(p["ws"], p["model"], p["file"])
        return self._ok(request, "file", file=file)

    def _delete_file(self, request: Request) -> Response:
        p = request.params
        self._backend.delete_file(p["ws"], p["model"], p["file"])
        return Response.empty(204)

    @staticmethod
    def _chunk_list(count: int) -> list[dict[str, str]]:
        return [{"id": str(i), "name": f"Chunk {i}"} for i in range(count)]

    def _list_file_chunks(self, request: Request) -> Response:
        p = request.params
        count = self._backend.file_chunk_count(p["ws"], p["model"], p["file"])
        return self._paged(request, "chunk", "chunks", self._chunk_list(count))

    def _get_file_chunk(self, request: Request) -> Response:
        p = request.params
        index = self._chunk_index(request, not_found=True)
        return Response.stream(self._backend.open_file_chunk(p["ws"], p["model"], p["file"], index))

    # -------------------------------------------------------------------------- actions and tasks

    def _list_definitions(self, kind: str, request: Request) -> Response:
        items = self._backend.list_definitions(request.params["ws"], request.params["model"], kind)
        return self._paged(
            request,
            {"imports": "import", "exports": "export", "processes": "process", "actions": "action"}[kind],
            kind,
            items,
        )

    def _get_definition(self, kind: str, request: Request) -> Response:
        p = request.params
        key, value = self._backend.get_definition(
            p.get("ws"), p["model"], kind, p[KINDS[kind]], self._flag(request, "showImportDataSource")
        )
        return self._ok(request, key, **{key: value})

    def _start_task(self, kind: str, request: Request) -> Response:
        body = self._json_body(request, required=False)
        p = request.params
        task = self._backend.start_task(p["ws"], p["model"], kind, p[KINDS[kind]], body)
        return self._ok(request, "task", task=task)

    def _list_tasks(self, kind: str, request: Request) -> Response:
        p = request.params
        items = self._backend.list_tasks(p["ws"], p["model"], kind, p[KINDS[kind]])
        return self._paged(request, "task", "tasks", items)

    def _get_task(self, kind: str, request: Request) -> Response:
        p = request.params
        task = self._backend.get_task(
            p["ws"], p["model"], kind, p[KINDS[kind]], p["task"], self._flag(request, "includeProcessDetails")
        )
        return self._ok(request, "task", task=task)

    def _cancel_task(self, kind: str, request: Request) -> Response:
        p = request.params
        task = self._backend.cancel_task(p["ws"], p["model"], kind, p[KINDS[kind]], p["task"])
        return self._ok(request, "task", task=task)

    # -------------------------------------------------------------------------------------- dumps

    def _import_dump(self, request: Request) -> Response:
        p = request.params
        return Response.stream(self._backend.open_dump(p["ws"], p["model"], p["import"], p["task"]), "text/csv")

    def _import_dump_chunks(self, request: Request) -> Response:
        p = request.params
        count = self._backend.dump_chunk_count(p["ws"], p["model"], p["import"], p["task"])
        return self._paged(request, "chunk", "chunks", self._chunk_list(count))

    def _import_dump_chunk(self, request: Request) -> Response:
        p = request.params
        index = self._chunk_index(request, not_found=True)
        return Response.stream(self._backend.open_dump(p["ws"], p["model"], p["import"], p["task"], None, index))

    def _process_dump(self, request: Request) -> Response:
        p = request.params
        slices = self._backend.open_dump(p["ws"], p["model"], p["process"], p["task"], p["object"])
        return Response.stream(slices, "text/csv")

    def _process_dump_chunks(self, request: Request) -> Response:
        p = request.params
        count = self._backend.dump_chunk_count(p["ws"], p["model"], p["process"], p["task"], p["object"])
        return self._paged(request, "chunk", "chunks", self._chunk_list(count))

    def _process_dump_chunk(self, request: Request) -> Response:
        p = request.params
        index = self._chunk_index(request, not_found=True)
        slices = self._backend.open_dump(p["ws"], p["model"], p["process"], p["task"], p["object"], index)
        return Response.stream(slices)

    # -------------------------------------------------------------------------------- control API

    def _get_config(self, request: Request) -> Response:
        return Response.json(
            {
                "defaults": asdict(self._backend.defaults),
                "actions": {a: asdict(self._backend.config_for(a)) for a in self._backend.action_configs},
            }
        )

    def _set_config(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            return Response.json({"error": "the body must be a JSON object"}, status=400)
        settings = dict(body)
        action_id = settings.pop("action_id", None)
        try:
            config = self._backend.configure(None if action_id is None else str(action_id), **settings)
        except ValueError as exc:
            return Response.json({"error": str(exc)}, status=400)
        return Response.json({"action_id": action_id, "config": asdict(config)})

    def _expire_tokens(self, request: Request) -> Response:
        return Response.json({"expired": self._backend.expire_tokens()})

    def _set_model_state(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            return Response.json({"error": "the body must be a JSON object"}, status=400)
        model_id = str(body.get("model_id", MODEL_ID))
        try:
            self._backend.set_model_state(model_id, str(body.get("state", "")))
        except ValueError as exc:
            return Response.json({"error": str(exc)}, status=400)
        except KeyError:
            return Response.json({"error": f"unknown model {model_id}"}, status=404)
        return Response.json({"model_id": model_id, "state": body["state"]})

    def _control_read_file(self, request: Request) -> Response:
        model_id = request.arg("model_id", MODEL_ID) or MODEL_ID
        try:
            slices = self._backend.open_file(request.params["file"], model_id)
        except (KeyError, AnaplanError):
            return Response.json({"error": f"unknown file {request.params['file']} in model {model_id}"}, status=404)
        return Response.stream(slices)

    def _control_write_file(self, request: Request) -> Response:
        model_id = request.arg("model_id", MODEL_ID) or MODEL_ID
        if model_id not in self._backend.models:
            return Response.json({"error": f"unknown model {model_id}"}, status=404)
        blob = self._backend.store.receive(request.body, limit=1 << 40, gunzip=False)
        self._backend.write_file(request.params["file"], blob, model_id, request.arg("name"))
        return Response.empty(204)

    def _control_last_request(self, request: Request) -> Response:
        body = self._backend.last_task_request.get(request.params["action"])
        if body is None:
            return Response.json({"error": "no task was started for this action"}, status=404)
        return Response.json(body)

    def _control_tasks(self, request: Request) -> Response:
        return Response.json({"tasks": self._backend.tasks()})


def _sort_key(value: Any) -> tuple[int, Any]:
    """Sort numbers numerically and everything else as text (None last)."""
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value).lower())
