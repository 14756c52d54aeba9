"""HTTP face of :class:`~.models.SacBackend`: token endpoint, tenant API, control API.

``/sap-analytics-cloud/oauth/token`` is the token URL; ``/sap-analytics-cloud/tenant`` is the tenant
URL (the connection's host) under which ``/api/v1/...``, ``/sap/fpa/services/rest/fpa/dataintegration``
and ``/wrangling/api/dm/...`` live. The tenant enforces what real tenants do: a Bearer token,
``x-sap-sac-custom-auth: true`` (without it: 200 with an HTML login page), CSRF on writes bound to
the session cookie of the fetch (``403`` with ``x-csrf-token: Required`` otherwise), technical
tokens refused by Multi Actions, and the data-management service's 200 no-op without ``tenant``.
"""

from __future__ import annotations

import base64
import binascii
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from ..faults import HTML_LOGIN_PAGE
from ..routing import Handler, HttpError, Mount, Request, Response, Route
from .models import SacBackend, SacError

PREFIX = "/sap-analytics-cloud"
TOKEN_PREFIX = f"{PREFIX}/oauth"
TENANT_PREFIX = f"{PREFIX}/tenant"
CONTROL_PREFIX = "/_sandbox/sap_analytics_cloud"
SESSION_COOKIE = "JSESSIONID"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def _error(status: int, message: str) -> Response:
    return Response.json({"status": status, "message": message}, status=status)


def _html_login() -> Response:
    return Response(status=200, body=HTML_LOGIN_PAGE.encode(), content_type="text/html;charset=utf-8")


def _route_error(request: Request, status: int, message: str) -> Response:
    return _error(status, f"[1305] {message}" if status == 404 else message)


class SacRoutes:
    """Builds the mounts; every handler delegates state to the backend."""

    def __init__(self, backend: SacBackend, platform: str) -> None:
        self.backend = backend
        self.platform = platform

    def mounts(self) -> list[Mount]:
        token = Mount(
            prefix=TOKEN_PREFIX,
            platform=self.platform,
            auth_endpoint=True,
            routes=[Route("POST", "/token", self._token)],
        )
        tenant = Mount(
            prefix=TENANT_PREFIX,
            platform=self.platform,
            guard=self._guard,
            errors=_route_error,
            routes=[Route(r.method, r.template, self._wrap(r.handler)) for r in self._tenant_routes()],
        )
        control = Mount(
            prefix=CONTROL_PREFIX,
            platform=self.platform,
            control=True,
            routes=[
                Route("GET", "/config", self._get_config),
                Route("POST", "/config", self._set_config),
                Route("POST", "/expire_tokens", self._expire_tokens),
                Route("POST", "/drop_sessions", self._drop_sessions),
                Route("GET", "/jobs", self._control_jobs),
            ],
        )
        return [token, tenant, control]

    def _tenant_routes(self) -> list[Route]:
        di = "/api/v1/dataimport"
        ma = "/api/v1/multiActions/{action}/executions"
        return [
            Route("GET", "/api/v1/csrf", self._csrf),
            Route("GET", f"{di}/models", self._models),
            Route("GET", f"{di}/models/{{model}}", self._model),
            Route("GET", f"{di}/models/{{model}}/metadata", self._metadata),
            Route("POST", f"{di}/models/{{model}}/{{import_type}}", self._create_job),
            Route("GET", f"{di}/jobs", self._jobs),
            Route("POST", f"{di}/jobs/{{job}}", self._push),
            Route("DELETE", f"{di}/jobs/{{job}}", self._delete),
            Route("POST", f"{di}/jobs/{{job}}/validate", self._validate),
            Route("POST", f"{di}/jobs/{{job}}/run", self._run),
            Route("GET", f"{di}/jobs/{{job}}/status", self._status),
            Route("GET", f"{di}/jobs/{{job}}/invalidRows", self._invalid_rows),
            Route("POST", ma, self._start_execution),
            Route("GET", f"{ma}/{{execution}}", self._execution),
            Route("POST", "/sap/fpa/services/rest/fpa/dataintegration", self._dataintegration),
            Route("GET", "/wrangling/api/dm/executions/{execution}/rejections", self._rejections),
        ]

    def _wrap(self, handler: Handler) -> Handler:
        def run(request: Request) -> Response:
            try:
                return handler(request)
            except SacError as exc:
                return _html_login() if exc.html else _error(exc.status, exc.message)

        return run

    # -- auth, session, CSRF ------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        raw = request.body.read_all(limit=64 * 1024).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        for key, values in request.query.items():
            form.setdefault(key, values[0])
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, value = request.header("Authorization").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(value.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return Response.json({"error": "invalid_client"}, status=401)
        try:
            body = self.backend.issue_token(client_id, secret, form.get("grant_type", ""), form.get("refresh_token"))
        except SacError as exc:
            error, _, description = exc.message.partition(": ")
            return Response.json(
                {"error": error if description else "invalid_client", "error_description": description or exc.message},
                status=exc.status,
            )
        return Response.json(body, headers={"Cache-Control": "no-store"})

    def _session(self, request: Request) -> str | None:
        cookie = SimpleCookie()
        try:
            cookie.load(request.header("Cookie"))
        except Exception:
            return None
        morsel = cookie.get(SESSION_COOKIE)
        return morsel.value if morsel else None

    def _guard(self, request: Request) -> Response | None:
        scheme, _, value = request.header("Authorization").partition(" ")
        token = self.backend.token(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            response = _error(401, "Unauthorized: the bearer token is missing, invalid or expired")
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        if request.header("x-sap-sac-custom-auth").lower() != "true":
            return _html_login()  # SAC builds a browser session and redirects to the login page
        request.params["_purpose"] = token.purpose
        request.params["_client"] = token.client_id
        if request.method in WRITES:
            session = self._session(request)
            if not self.backend.csrf_ok(session, request.header("x-csrf-token")):
                response = _error(403, "CSRF token validation failed")
                response.headers["x-csrf-token"] = "Required"
                return response
        return None

    def _csrf(self, request: Request) -> Response:
        if request.header("x-csrf-token").lower() != "fetch":
            return Response.json({"status": "ok"})
        session, csrf = self.backend.new_session()
        return Response.json(
            {},
            headers={"x-csrf-token": csrf, "Set-Cookie": f"{SESSION_COOKIE}={session}; Path=/; HttpOnly"},
        )

    # -- Data Import API ----------------------------------------------------------------------------------

    @staticmethod
    def _json(request: Request, *, required: bool = True) -> Any:
        try:
            return request.json(required=required)
        except HttpError as exc:
            raise HttpError(_error(400, "[1006] The request body is not valid JSON")) from exc

    def _models(self, request: Request) -> Response:
        models = [{"modelID": m["modelID"], "modelName": m["modelName"]} for m in self.backend.models.values()]
        return Response.json({"models": models})

    def _model(self, request: Request) -> Response:
        model = self.backend.model(request.params["model"])
        return Response.json({"modelID": model["modelID"], "importTypes": sorted(model["metadata"])})

    def _metadata(self, request: Request) -> Response:
        return Response.json(self.backend.model(request.params["model"])["metadata"])

    def _create_job(self, request: Request) -> Response:
        body = self._json(request, required=False) or {}
        job = self.backend.create_job(
            request.params["model"], request.params["import_type"], request.params["_client"], body
        )
        return Response.json({"jobID": job.job_id, "jobURL": f"/api/v1/dataimport/jobs/{job.job_id}"}, status=201)

    def _jobs(self, request: Request) -> Response:
        return Response.json(
            [
                {"jobID": job.job_id, "jobStatus": job.status, "modelID": job.model_id}
                for job in self.backend.jobs.values()
            ]
        )

    def _push(self, request: Request) -> Response:
        body = self._json(request)
        rows = body.get("Data") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            return _error(400, '[1006] The request body needs "Data": a list of rows')
        return Response.json(self.backend.push_rows(request.params["job"], rows), status=201)

    def _delete(self, request: Request) -> Response:
        self.backend.delete_job(request.params["job"])
        return Response.empty()

    def _validate(self, request: Request) -> Response:
        return Response.json(self.backend.validate(request.params["job"]), status=201)

    def _run(self, request: Request) -> Response:
        body = self._json(request, required=False) or {}
        override = body.get("overrideExecuteWithFailedRows") if isinstance(body, dict) else None
        return Response.json(self.backend.run(request.params["job"], override), status=202)

    def _status(self, request: Request) -> Response:
        return Response.json(self.backend.status(request.params["job"]))

    def _invalid_rows(self, request: Request) -> Response:
        job = self.backend.job(request.params["job"])
        return Response.json({"jobID": job.job_id, "failedRows": job.invalid})

    # -- Multi Actions ---------------------------------------------------------------------------------

    def _start_execution(self, request: Request) -> Response:
        if request.params["_purpose"] != "user":
            return _error(403, "[3401] OAuth Client is not allowed to interact with API: Multi Actions need a user")
        body = self._json(request, required=False) or {}
        execution = self.backend.start_execution(request.params["action"], body)
        return Response.json({"executionId": execution.execution_id, "status": "running"}, status=202)

    def _execution(self, request: Request) -> Response:
        if request.params["_purpose"] != "user":
            return _error(403, "[3401] OAuth Client is not allowed to interact with API: Multi Actions need a user")
        return Response.json(self.backend.execution(request.params["action"], request.params["execution"]))

    # -- data-management service ------------------------------------------------------------------------

    def _dataintegration(self, request: Request) -> Response:
        if request.params["_purpose"] != "user":
            mode = self.backend.config.technical_token_on_dataintegration
            if mode == "html":
                return _html_login()
            if mode == "400":
                return _error(400, "OAuth Client is not allowed to access the requested resource")
        action = request.arg("action")
        tenant = request.arg("tenant")
        body = self._json(request, required=False)
        if action == "getScheduleLogsByModel":
            if tenant != "G":
                return Response.json({"status": 200, "data": []})
            model_name = body.get("modelName") if isinstance(body, dict) else None
            if not model_name:
                return Response.json({"status": 400, "message": "modelName is required"})
            return Response.json({"status": 200, "data": self.backend.schedule_logs(str(model_name))})
        if action == "runScheduledJob":
            return Response.json({"status": 200, "data": self.backend.run_schedule(tenant, body)})
        if action in ("createMapping", "saveMapping", "copyMapping", "duplicateMapping"):
            return _error(400, f"Action {action} is not allowed from outside the application")
        return Response.json({"status": 200, "data": None})

    def _rejections(self, request: Request) -> Response:
        if request.arg("app") != "SAC":
            return _error(400, "The app parameter is required")
        text = self.backend.rejections(request.params["execution"])
        return Response(status=200, body=text.encode(), content_type="text/csv;charset=utf-8")

    # -- control ------------------------------------------------------------------------------------------

    def _get_config(self, request: Request) -> Response:
        return Response.json(vars(self.backend.config))

    def _set_config(self, request: Request) -> Response:
        try:
            self.backend.configure(**(request.json() or {}))
        except (TypeError, ValueError) as exc:
            return Response.json({"error": str(exc)}, status=400)
        return Response.json(vars(self.backend.config))

    def _expire_tokens(self, request: Request) -> Response:
        self.backend.expire_tokens()
        return Response.json({"status": "expired"})

    def _drop_sessions(self, request: Request) -> Response:
        self.backend.drop_sessions()
        return Response.json({"status": "dropped"})

    def _control_jobs(self, request: Request) -> Response:
        jobs = [
            {"jobID": j.job_id, "status": j.status, "rows": len(j.rows), "invalid": len(j.invalid)}
            for j in self.backend.jobs.values()
        ]
        return Response.json({"jobs": jobs, "deleted": list(self.backend.deleted_jobs)})
