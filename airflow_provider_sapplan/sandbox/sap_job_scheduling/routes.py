"""SAP Job Scheduling sandbox: HTTP face of :class:`~.backend.JobSchedulingBackend` (XSUAA token
endpoints, the REST API and the ``/_sandbox/sap_job_scheduling`` control API).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs

from ..platform import Platform
from ..routing import BodyTooLargeError, Handler, HttpError, Mount, Request, Response, Route
from .backend import JobSchedulingBackend
from .models import (
    _ERROR_TYPES,
    API_PREFIX,
    CLIENT_ID,
    CLIENT_SECRET,
    CONTROL_PREFIX,
    DEFAULT_PAGE_SIZE,
    DEPRECATION_HEADERS,
    LITE_PASSWORD,
    LITE_USER,
    MAX_BODY_BYTES,
    MAX_FORM_BYTES,
    MAX_JOB_PAGE_SIZE,
    MAX_RUN_LOGS,
    SCOPES,
    UAA_CERT_PREFIX,
    UAA_PREFIX,
    JobSchedulingError,
    _parse_bool,
    parse_filter,
)


def _api_error(request: Request | None, status: int, message: str, detailed: str | None = None) -> Response:
    """The service's error body: ``{"code", "message", "type", "detailedError"}``."""
    body = {
        "code": status,
        "message": message,
        "type": _ERROR_TYPES.get(status, "Error"),
        "detailedError": detailed or message,
    }
    return Response.json(body, status=status)


def _oauth_error(status: int, error: str, description: str) -> Response:
    """XSUAA's error body: ``{"error", "error_description"}`` (401 adds ``WWW-Authenticate``)."""
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = f'Basic realm="UAA/client", error="{error}", error_description="{description}"'
    return Response.json({"error": error, "error_description": description}, status=status, headers=headers)


def _uaa_route_error(request: Request, status: int, message: str) -> Response:
    error = "method_not_allowed" if status == 405 else "not_found"
    return _oauth_error(status, error, message)


class SapJobSchedulingPlatform(Platform):
    """HTTP face of :class:`JobSchedulingBackend`: XSUAA token endpoints, REST API and control API."""

    name = "sap_job_scheduling"
    title = "SAP BTP Job Scheduling Service (REST API)"

    backend_class = JobSchedulingBackend

    @property
    def backend(self) -> JobSchedulingBackend:
        """The Job Scheduling state."""
        return self._backend

    def connection_hints(self, base_url: str) -> list[str]:
        """The ``AIRFLOW_CONN_SAP_JOB_SCHEDULING_DEFAULT`` line for this server."""
        service_key = {
            "url": f"{base_url}{API_PREFIX}",
            "uaa": {"url": f"{base_url}{UAA_PREFIX}", "clientid": CLIENT_ID, "clientsecret": CLIENT_SECRET},
        }
        conn = {"conn_type": "sap_job_scheduling", "extra": {"service_key": service_key}}
        return [
            f"# {self.title}: XSUAA client {CLIENT_ID} / {CLIENT_SECRET} (x509 token URL {base_url}{UAA_CERT_PREFIX}, "
            f"certificate not checked); lite-plan basic auth {LITE_USER} / {LITE_PASSWORD}",
            f"export AIRFLOW_CONN_SAP_JOB_SCHEDULING_DEFAULT='{json.dumps(conn)}'",
        ]

    # ------------------------------------------------------------------------------------- mounts

    def mounts(self) -> list[Mount]:
        """``/sap-job-scheduling/uaa``, ``.../uaa-cert``, ``.../api`` and ``/_sandbox/sap_job_scheduling``."""
        uaa = Mount(
            prefix=UAA_PREFIX,
            platform=self.name,
            auth_endpoint=True,
            errors=_uaa_route_error,
            routes=[Route("POST", "/oauth/token", self._token)],
        )
        uaa_cert = Mount(
            prefix=UAA_CERT_PREFIX,
            platform=self.name,
            auth_endpoint=True,
            errors=_uaa_route_error,
            routes=[Route("POST", "/oauth/token", self._cert_token)],
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
                Route("POST", "/throttling", self._set_throttling),
                Route("GET", "/runs", self._control_runs),
            ],
        )
        return [uaa, uaa_cert, api, control]

    def _api_routes(self) -> list[Route]:
        job = "/scheduler/jobs/{job}"
        one = f"{job}/schedules/{{schedule}}"
        routes = [
            Route("POST", "/scheduler/jobs", self._create_job),
            Route("GET", "/scheduler/jobs", self._list_jobs),
            Route("GET", job, self._get_job),
            Route("PUT", job, self._put_job),
            Route("DELETE", job, self._delete_job),
            Route("POST", f"{job}/schedules/activationStatus", self._activation),
            Route("GET", f"{job}/schedules", self._list_schedules),
            Route("POST", f"{job}/schedules", self._create_schedule),
            Route("DELETE", f"{job}/schedules", self._delete_all_schedules),
            Route("GET", one, self._get_schedule),
            Route("PUT", one, self._put_schedule),
            Route("DELETE", one, self._delete_schedule),
            Route("GET", f"{one}/runs", self._list_runs),
            Route("GET", f"{one}/runs/{{run}}", self._get_run),
            Route("PUT", f"{one}/runs/{{run}}", self._put_run),
        ]
        return [Route(r.method, r.template, self._wrap(r.handler)) for r in routes]

    def _wrap(self, handler: Handler) -> Handler:
        """Turn backend errors into the service's error body; apply configured throttling."""

        def run(request: Request) -> Response:
            throttling = self._backend.throttling_ms
            if throttling:
                time.sleep(self.context.scaled(throttling / 1000.0))
            try:
                response = handler(request)
            except JobSchedulingError as exc:
                return _api_error(request, exc.status, exc.message, exc.detailed)
            if throttling:
                response.headers["throttling"] = f"{throttling:g}"
            return response

        return run

    def _guard(self, request: Request) -> Response | None:
        """Every API call needs a current XSUAA ``Bearer`` token, or the lite plan's Basic credentials."""
        scheme, _, value = request.header("Authorization").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value and self._backend.check_token(value):
            return None
        if scheme.lower() == "basic" and value and self._backend.check_lite(value):
            return None
        detail = "Bearer token missing, invalid or expired" if scheme.lower() != "basic" else "Bad credentials"
        response = _api_error(request, 401, "Unauthorized", detail)
        response.headers["WWW-Authenticate"] = 'Bearer realm="jobscheduler", error="invalid_token"'
        return response

    # ------------------------------------------------------------------------------ JSON helpers

    @staticmethod
    def _body(request: Request) -> Any:
        """The JSON request body; over 100 KB answers 413, non-JSON 400."""
        too_large = _api_error(request, 413, "request entity too large")
        length = request.body.declared_length
        if length is not None and length > MAX_BODY_BYTES:
            raise HttpError(too_large)
        try:
            raw = request.body.read_all(limit=MAX_BODY_BYTES)
        except BodyTooLargeError as exc:
            raise HttpError(too_large) from exc
        if not raw.strip():
            raise HttpError(_api_error(request, 400, "Invalid request: a JSON request body is required"))
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(_api_error(request, 400, f"Invalid request: the body is not JSON ({exc})")) from exc

    @staticmethod
    def _int_arg(request: Request, name: str, minimum: int) -> int | None:
        raw = request.arg(name)
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            raise HttpError(_api_error(request, 400, f"Invalid request: '{name}' must be a number")) from None
        if value < minimum:
            raise HttpError(_api_error(request, 400, f"Invalid request: '{name}' must be at least {minimum}"))
        return value

    @staticmethod
    def _flag(request: Request, name: str) -> bool:
        return (request.arg(name) or "").lower() == "true"

    @staticmethod
    def _envelope(items: list[dict[str, Any]], page_size: int, offset: int, path: str) -> dict[str, Any]:
        """``{"total","results","prev_url","next_url"}`` with offset links relative to the API root."""
        page = items[offset : offset + page_size]
        more = offset + page_size < len(items)
        next_url = f"{path}?page_size={page_size}&offset={offset + page_size}" if more else None
        prev_url = f"{path}?page_size={page_size}&offset={max(offset - page_size, 0)}" if offset > 0 else None
        return {"total": len(items), "results": page, "prev_url": prev_url, "next_url": next_url}

    @staticmethod
    def _created(body: dict[str, Any], location: str) -> Response:
        return Response.json(body, status=201, headers={"Location": location})

    @staticmethod
    def _success() -> Response:
        return Response.json({"success": True})

    # --------------------------------------------------------------------------------------- auth

    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        """The ``application/x-www-form-urlencoded`` body (query parameters fill the gaps)."""
        try:
            raw = request.body.read_all(limit=MAX_FORM_BYTES)
        except BodyTooLargeError as exc:
            raise HttpError(_oauth_error(400, "invalid_request", "The request body is too large")) from exc
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        for key, values in request.query.items():
            form.setdefault(key, values[0])
        return form

    def _token_response(self, request: Request, form: dict[str, str], issuer: str, grant: str) -> Response:
        grant_type = form.get("grant_type")
        if not grant_type:
            return _oauth_error(400, "invalid_request", "Missing grant type")
        if grant_type != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
        token = self._backend.issue_token(issuer, grant)
        body = {
            "access_token": token.value,
            "token_type": "bearer",
            "expires_in": int(self._backend.token_ttl),
            "scope": " ".join(SCOPES),
            "jti": token.jti,
        }
        return Response.json(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _token(self, request: Request) -> Response:
        """``POST /oauth/token`` with client id and secret (Basic header or form fields)."""
        form = self._form(request)
        scheme, _, value = request.header("Authorization").strip().partition(" ")
        client_id: str | None = form.get("client_id")
        client_secret: str | None = form.get("client_secret")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, binascii.Error):
                client_id = client_secret = None
        if not self._backend.authenticate_client(client_id, client_secret):
            return _oauth_error(401, "unauthorized", "Bad credentials")
        return self._token_response(request, form, f"{request.base_url}{UAA_PREFIX}", "client_credentials")

    def _cert_token(self, request: Request) -> Response:
        """``POST <certurl>/oauth/token``: x509 client credentials (the certificate cannot be checked)."""
        form = self._form(request)
        if form.get("client_id") != self._backend.context.credentials.get("sap_job_scheduling", "client_id", CLIENT_ID):
            return _oauth_error(401, "unauthorized", "Bad credentials")
        return self._token_response(request, form, f"{request.base_url}{UAA_CERT_PREFIX}", "x509")

    # --------------------------------------------------------------------------------------- jobs

    def _create_job(self, request: Request) -> Response:
        job = self._backend.create_job(self._body(request))
        return self._created(job, f"/scheduler/jobs/{job['_id']}")

    def _list_jobs(self, request: Request) -> Response:
        name, job_id = request.arg("name"), request.arg("jobId")
        if name is not None or job_id is not None:
            if request.arg("page_size") is not None or request.arg("offset") is not None:
                return _api_error(request, 400, "Invalid request: name and jobId cannot be combined with paging")
            job = self._backend.find_job(name, job_id, self._flag(request, "displaySchedules"))
            return Response.json(job)
        page_size = self._int_arg(request, "page_size", minimum=1) or DEFAULT_PAGE_SIZE
        if page_size > MAX_JOB_PAGE_SIZE:
            return _api_error(request, 400, f"Invalid request: page_size must not exceed {MAX_JOB_PAGE_SIZE}")
        offset = self._int_arg(request, "offset", minimum=0) or 0
        groups = None
        filter_text = request.arg("filter") or request.arg("$filter")
        if filter_text:
            try:
                groups = parse_filter(filter_text)
            except ValueError as exc:
                return _api_error(request, 400, f"Invalid filter: {exc}")
        order = (request.arg("sort_order") or "ASC").upper()
        if order not in ("ASC", "DESC"):
            return _api_error(request, 400, "Invalid request: sort_order must be ASC or DESC")
        items = self._backend.list_jobs(groups, request.arg("jobType"), request.arg("sort_by"), order == "DESC")
        body = self._envelope(items, page_size, offset, "/scheduler/jobs")
        return Response.json(body, headers=dict(DEPRECATION_HEADERS))

    def _get_job(self, request: Request) -> Response:
        return Response.json(self._backend.get_job(request.params["job"], self._flag(request, "displaySchedules")))

    def _put_job(self, request: Request) -> Response:
        key = request.params["job"]
        body = self._body(request)
        if key.isdigit():
            self._backend.update_job(key, body)
            return self._success()
        created, job = self._backend.put_job_by_name(key, body)
        if created:
            return self._created(job, f"/scheduler/jobs/{job['_id']}")
        return self._success()

    def _delete_job(self, request: Request) -> Response:
        self._backend.delete_job(request.params["job"])
        return self._success()

    # ---------------------------------------------------------------------------------- schedules

    def _list_schedules(self, request: Request) -> Response:
        items = self._backend.list_schedules(request.params["job"])
        if self._backend.bare_schedule_list:
            return Response.json(items)
        size = self._int_arg(request, "page_size", minimum=1)
        offset = self._int_arg(request, "offset", minimum=0)
        if size is None:
            size = DEFAULT_PAGE_SIZE if offset is not None else max(len(items), 1)
        path = f"/scheduler/jobs/{request.params['job']}/schedules"
        return Response.json(self._envelope(items, size, offset or 0, path))

    def _create_schedule(self, request: Request) -> Response:
        job_id = request.params["job"]
        body = self._body(request)
        schedule = self._backend.create_schedule(job_id, body)
        return self._created(schedule, f"/scheduler/jobs/{schedule['jobId']}/schedules/{schedule['scheduleId']}")

    def _delete_all_schedules(self, request: Request) -> Response:
        self._backend.delete_all_schedules(request.params["job"])
        return self._success()

    def _activation(self, request: Request) -> Response:
        body = self._body(request)
        if not isinstance(body, dict) or "activationStatus" not in body:
            return _api_error(request, 400, 'Invalid request: the body must be {"activationStatus": true|false}')
        active = _parse_bool(body["activationStatus"], "activationStatus", "Error while updating schedules")
        self._backend.set_activation(request.params["job"], active)
        return self._success()

    def _get_schedule(self, request: Request) -> Response:
        p = request.params
        return Response.json(self._backend.get_schedule(p["job"], p["schedule"], self._flag(request, "displayLogs")))

    def _put_schedule(self, request: Request) -> Response:
        p = request.params
        return Response.json(self._backend.update_schedule(p["job"], p["schedule"], self._body(request)))

    def _delete_schedule(self, request: Request) -> Response:
        p = request.params
        self._backend.delete_schedule(p["job"], p["schedule"])
        return self._success()

    # --------------------------------------------------------------------------------------- runs

    def _list_runs(self, request: Request) -> Response:
        """Run logs, oldest first: ``page_size``/``offset`` or the ``next``/``prev`` run-id cursors."""
        p = request.params
        items = self._backend.list_runs(p["job"], p["schedule"])
        path = f"/scheduler/jobs/{p['job']}/schedules/{p['schedule']}/runs"
        size = self._int_arg(request, "page_size", minimum=1)
        offset = self._int_arg(request, "offset", minimum=0)
        after, before = request.arg("next"), request.arg("prev")
        if after is None and before is None:
            if size is None:
                size = DEFAULT_PAGE_SIZE if offset is not None else MAX_RUN_LOGS
            return Response.json(self._envelope(items, min(size, MAX_RUN_LOGS), offset or 0, path))
        size = min(size or DEFAULT_PAGE_SIZE, MAX_RUN_LOGS)
        ids = [r["runId"] for r in items]
        cursor = after if after is not None else before
        if cursor not in ids:
            return _api_error(request, 400, f"Invalid request: unknown run ID '{cursor}' in the cursor")
        position = ids.index(str(cursor))
        start = position + 1 if after is not None else max(position - size, 0)
        end = start + size if after is not None else position
        page = items[start:end]
        body = {
            "total": len(items),
            "results": page,
            "prev_url": f"{path}?page_size={size}&prev={page[0]['runId']}" if page and start > 0 else None,
            "next_url": f"{path}?page_size={size}&next={page[-1]['runId']}" if page and end < len(items) else None,
        }
        return Response.json(body)

    def _get_run(self, request: Request) -> Response:
        p = request.params
        return Response.json(self._backend.get_run(p["job"], p["schedule"], p["run"]))

    def _put_run(self, request: Request) -> Response:
        p = request.params
        body = self._body(request)
        context = "Error while updating run log"
        if not isinstance(body, dict) or "success" not in body:
            return _api_error(request, 400, f"{context}: 'success' is required")
        success = _parse_bool(body["success"], "success", context)
        message = body.get("message", "")
        if message is not None and not isinstance(message, str):
            return _api_error(request, 400, f"{context}: 'message' must be a string")
        self._backend.update_run_log(p["job"], p["schedule"], p["run"], success, message or "")
        return self._success()

    # -------------------------------------------------------------------------------- control API

    def _get_config(self, request: Request) -> Response:
        backend = self._backend
        return Response.json(
            {
                "defaults": asdict(backend.defaults),
                "jobs": {str(j): asdict(backend.config_for(j)) for j in backend.configs_by_id},
                "job_names": dict(backend.configs_by_name),
            }
        )

    def _set_config(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            return Response.json({"error": "the body must be a JSON object"}, status=400)
        settings = dict(body)
        job_id = settings.pop("job_id", None)
        job_name = settings.pop("job_name", None)
        try:
            config = self._backend.configure(job_id, job_name=None if job_name is None else str(job_name), **settings)
        except ValueError as exc:
            return Response.json({"error": str(exc)}, status=400)
        return Response.json({"job_id": job_id, "job_name": job_name, "config": asdict(config)})

    def _expire_tokens(self, request: Request) -> Response:
        return Response.json({"expired": self._backend.expire_tokens()})

    def _set_throttling(self, request: Request) -> Response:
        body = request.json()
        try:
            milliseconds = float(body.get("throttling_ms", 0)) if isinstance(body, dict) else -1.0
            self._backend.set_throttling(milliseconds)
        except (TypeError, ValueError) as exc:
            return Response.json({"error": f'the body must be {{"throttling_ms": N}} with N >= 0 ({exc})'}, status=400)
        return Response.json({"throttling_ms": self._backend.throttling_ms})

    def _control_runs(self, request: Request) -> Response:
        return Response.json({"runs": self._backend.runs()})
