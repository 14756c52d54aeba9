"""HTTP rendering of the DI sandbox: RMS internal API, pipeline runtime API and the control API.

Authentication is HTTP basic with ``tenant\\user``; bad or missing credentials get DI's HTML
logon page with HTTP 200 (as the real tenant does), and a call without a non-empty
``X-Requested-With`` header gets 403.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..credentials import SandboxCredentials
from ..faults import HTML_LOGIN_PAGE
from ..routing import Handler, HttpError, Request, Response, Route
from .models import PASSWORD, TENANT, USER, DataIntelligenceBackend, DataIntelligenceError

PREFIX = "/sap-data-intelligence"
RMS = "/app/rms/api/dt/v1"
PIPELINE = "/app/pipeline-modeler/service/v1/runtime"


def error(status: int, message: str) -> Response:
    return Response.json({"code": str(status), "message": message}, status=status)


def api_error(request: Request | None, status: int, message: str) -> Response:
    return error(status, message)


def logon_page() -> Response:
    return Response(status=200, body=HTML_LOGIN_PAGE.encode(), content_type="text/html; charset=utf-8")


def guard(request: Request, credentials: SandboxCredentials | None = None) -> Response | None:
    """Basic ``tenant\\user`` credentials (else the HTML logon page on 200), then X-Requested-With.

    ``credentials`` are the server's (:mod:`..credentials`); None accepts the documented ones.
    """
    accepted = credentials or SandboxCredentials()
    tenant = accepted.get("sap_data_intelligence", "tenant", TENANT)
    user = accepted.get("sap_data_intelligence", "user", USER)
    password = accepted.get("sap_data_intelligence", "password", PASSWORD)
    scheme, _, value = request.header("Authorization").strip().partition(" ")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if scheme.lower() != "basic" or decoded != f"{tenant}\\{user}:{password}":
        return logon_page()
    if not request.header("X-Requested-With").strip():
        return Response(
            status=403,
            body=b"Forbidden: the request lacks the X-Requested-With header required for API calls",
            content_type="text/plain",
        )
    return None


class Routes:
    """Binds the backend to URL templates."""

    def __init__(self, backend: DataIntelligenceBackend) -> None:
        self.backend = backend

    def api(self) -> list[Route]:
        flow = f"{RMS}/replicationflows/{{flow}}"
        routes = [
            Route("GET", f"{RMS}/replicationflows", lambda r: Response.json(self.backend.flow_list())),
            Route("GET", flow, lambda r: Response.json(self.backend.definition(r.params["flow"]))),
            Route("OPTIONS", flow, self._options),
            Route(
                "GET", f"{flow}/configuration", lambda r: Response.json(self.backend.configuration(r.params["flow"]))
            ),
            Route("PUT", flow, self._put_flow),
            Route(
                "GET",
                f"{flow}/changerequeststatus",
                lambda r: Response.json(self.backend.change_request_doc(r.params["flow"])),
            ),
            Route("GET", f"{flow}/taskMonitors", lambda r: Response.json(self.backend.task_monitors(r.params["flow"]))),
            Route(
                "GET", f"{RMS}/replicationflowMonitors", lambda r: Response.json(self.backend.monitors(r.arg("name")))
            ),
            Route("POST", f"{PIPELINE}/graphs", self._start_graph),
            Route("GET", f"{PIPELINE}/graphs", lambda r: Response.json(self.backend.graph_list())),
            Route(
                "GET",
                f"{PIPELINE}/graphs/{{handle}}",
                lambda r: Response.json(self.backend.graph_doc(r.params["handle"])),
            ),
            Route("DELETE", f"{PIPELINE}/graphs/{{handle}}", self._stop_graph),
        ]
        return [Route(r.method, r.template, _wrap(r.handler)) for r in routes]

    def control(self) -> list[Route]:
        return [
            Route("GET", "/config", lambda r: Response.json(self.backend.config.__dict__)),
            Route("POST", "/config", self._config),
            Route("GET", "/state", self._state),
            Route("POST", "/flows/{flow}/fail_next_request", self._fail_next),
            Route("POST", "/flows/{flow}/tasks/{task}/error", self._task_error),
            Route("POST", "/flows/{flow}/foreign_request", self._foreign),
            Route("POST", "/graphs/{src}", self._graph_outcome),
        ]

    # -- API handlers --------------------------------------------------------------------------------

    @staticmethod
    def _options(request: Request) -> Response:
        return Response(status=200, body=b"", content_type=None, headers={"Allow": "GET, OPTIONS"})

    def _put_flow(self, request: Request) -> Response:
        name = request.params["flow"]
        request_type = request.arg("requestType") or ""
        raw = request.body.read_all()
        tasks: Any = None
        if raw.strip():
            try:
                tasks = json.loads(raw)
            except ValueError:
                return error(400, "The request body must be a JSON array of task names")
        self.backend.request_change(name, request_type, tasks)
        return Response.json({"url": f"/api/dt/v1/replicationflows/{name}/changerequeststatus"}, status=202)

    def _start_graph(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("src"), str) or not body["src"]:
            return error(400, "Body must be a JSON object with 'src' (the graph name)")
        subs = body.get("configurationSubstitutions") or {}
        if not isinstance(subs, dict):
            return error(400, "'configurationSubstitutions' must be an object")
        return Response.json(self.backend.start_graph(body["src"], str(body.get("name") or ""), subs))

    def _stop_graph(self, request: Request) -> Response:
        self.backend.stop_graph(request.params["handle"])
        return Response.empty(200)

    # -- control -----------------------------------------------------------------------------------

    def _config(self, request: Request) -> Response:
        try:
            config = self.backend.configure(**(request.json() or {}))
        except (TypeError, ValueError) as exc:
            return error(400, str(exc))
        return Response.json(config.__dict__)

    def _state(self, request: Request) -> Response:
        backend = self.backend
        return Response.json(
            {
                "change_requests": backend.change_requests,
                "graph_starts": backend.graph_starts,
                "graph_stops": backend.graph_stops,
                "flows": {name: backend.task_monitors(name) for name in backend.flows},
            }
        )

    def _fail_next(self, request: Request) -> Response:
        body = request.json(required=False) or {}
        self.backend.fail_next_request(request.params["flow"], body.get("objects"))
        return Response.json({"status": "armed"})

    def _task_error(self, request: Request) -> Response:
        body = request.json(required=False) or {}
        self.backend.inject_task_error(
            request.params["flow"],
            request.params["task"],
            reason=str(body.get("reason", "DATA_NOT_READY")),
            retries=body.get("retries", 3),
            message=str(body.get("message", "")),
        )
        return Response.json({"status": "armed"})

    def _foreign(self, request: Request) -> Response:
        body = request.json(required=False) or {}
        self.backend.foreign_request(
            request.params["flow"], str(body.get("requestType", "SUSPEND_ALL_ACTIVE_TASKS")), body.get("tasks")
        )
        return Response.json({"status": "sent"})

    def _graph_outcome(self, request: Request) -> Response:
        body = request.json(required=False) or {}
        try:
            self.backend.configure_graph(
                request.params["src"],
                outcome=str(body.get("outcome", "completed")),
                message=str(body.get("message", "")),
                duration=body.get("duration"),
            )
        except ValueError as exc:
            return error(400, str(exc))
        return Response.json({"status": "configured"})


def _wrap(handler: Handler) -> Handler:
    def run(request: Request) -> Response:
        try:
            return handler(request)
        except DataIntelligenceError as exc:
            return error(exc.status, exc.message)
        except HttpError:
            raise

    return run
