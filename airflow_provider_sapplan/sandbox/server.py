"""The sandbox HTTP server: sockets, dispatch to platform mounts, faults, stats and control API.

:class:`SandboxServer` runs a ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive, one daemon thread per
connection) in a background thread. Every request goes through the same pipeline:

1. ``/_sandbox/...`` control requests are served directly (never faulted, never counted);
2. the request is counted in :class:`~.stats.Stats` under its route template;
2a. an outage in progress (:mod:`.outage`) may drop it or answer 503 instead;
2b. a platform's rate limit (:mod:`.rate_limit`), when one is set, may answer 429 instead;
3. fault rules are checked (:mod:`.faults`) and may answer instead of the platform;
4. the platform mount's guard (authentication) runs, then the route handler;
5. any request body the handler left unread is drained, so the connection stays reusable;
6. the response is written with a correct Content-Length; file bodies go out with ``sendfile``.

Platforms are listed in :data:`PLATFORMS`; the server knows nothing else about them.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import threading
import time
import traceback
import weakref
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from .anaplan import AnaplanBackend, AnaplanPlatform
from .faults import HTML_LOGIN_PAGE, FaultInjector, FaultRule
from .outage import OutageControl, outage_response
from .platform import Platform, SandboxContext
from .rate_limit import RateLimiter, retry_after_header
from .routing import (
    BodyReader,
    HttpError,
    Mount,
    Request,
    Response,
    Route,
    normalize_path,
    parse_query,
)
from .sap_analytics_cloud import SapAnalyticsCloudPlatform
from .sap_cloud_integration import CloudIntegrationBackend, SapCloudIntegrationPlatform
from .sap_data_intelligence import DataIntelligenceBackend, SapDataIntelligencePlatform
from .sap_job_scheduling import JobSchedulingBackend, SapJobSchedulingPlatform
from .stats import Stats
from .storage import make_data_dir

#: Every emulated platform. Adding one = writing its module and listing its Platform class here.
PLATFORMS: tuple[type[Platform], ...] = (
    AnaplanPlatform,
    SapJobSchedulingPlatform,
    SapCloudIntegrationPlatform,
    SapDataIntelligencePlatform,
    SapAnalyticsCloudPlatform,
)

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    423: "Locked",
    424: "Failed Dependency",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def fault_response(rule: FaultRule) -> Response | None:
    """The response a fault rule answers with, or None when it only delays the request."""
    if rule.drop:
        return Response(status=0, drop=True)
    if rule.html_login:
        headers = {"Cache-Control": "no-store", **rule.headers}
        return Response(
            status=200, body=HTML_LOGIN_PAGE.encode(), content_type="text/html;charset=utf-8", headers=headers
        )
    if rule.status is None:
        return None
    headers = dict(rule.headers)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    if rule.body is None:
        reason = _REASONS.get(rule.status, "Injected fault")
        body = Response.json({"status": {"code": rule.status, "message": reason}}).body
        content_type = content_type or "application/json"
    elif isinstance(rule.body, (dict, list)):
        body = Response.json(rule.body).body
        content_type = content_type or "application/json"
    else:
        body = str(rule.body).encode()
        content_type = content_type or "text/plain;charset=utf-8"
    return Response(status=rule.status, body=body, content_type=content_type, headers=headers)


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers its open connections so ``stop()`` can close them."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection, then serve it on its own thread."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection once it is closed."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open keep-alive connection (their threads then end)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Turns raw HTTP into :class:`Request` objects and writes :class:`Response` objects back."""

    protocol_version = "HTTP/1.1"
    server_version = "SapplanSandbox/1.0"
    timeout = 300
    server: _HTTPServer

    def setup(self) -> None:
        """Disable Nagle: small JSON answers on keep-alive connections must not wait for ACKs."""
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Log requests to stderr only in verbose mode."""
        if self.server.sandbox.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        """Serve GET."""
        self._dispatch()

    def do_POST(self) -> None:
        """Serve POST."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Serve PUT."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Serve DELETE."""
        self._dispatch()

    def do_PATCH(self) -> None:
        """Serve PATCH."""
        self._dispatch()

    def do_OPTIONS(self) -> None:
        """Serve OPTIONS (answered 405 by the platforms, which do not support it)."""
        self._dispatch()

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        raw_path, _, query = self.path.partition("?")
        path = normalize_path(unquote(raw_path))
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length: int | None = None
        if not chunked and self.headers.get("Content-Length"):
            try:
                length = int(self.headers["Content-Length"])
            except ValueError:
                self.close_connection = True
                self._write(Response.json({"error": "invalid Content-Length"}, status=400))
                return
        host = self.headers.get("Host") or f"{sandbox.host}:{sandbox.port}"
        request = Request(
            method=self.command.upper(),
            path=path,
            query=parse_query(query),
            headers=self.headers,
            body=BodyReader(self.rfile, length, chunked),
            base_url=f"http://{host}",
        )
        fault_id: int | None = None
        counted = False
        try:
            response, fault_id, counted = sandbox.handle(request)
        except (ConnectionError, TimeoutError):  # the client went away while sending its body
            self.close_connection = True
            return
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            response = Response.json({"status": {"code": 500, "message": f"sandbox error: {exc!r}"}}, status=500)
        status: int | None = None
        try:
            try:
                request.body.drain()
            except (ConnectionError, TimeoutError):
                self.close_connection = True
                return
            status = self._write(response)
        finally:
            response.close()
            if counted:
                sandbox.stats.record_response(request.method, request.path, request.route, status, fault_id)

    def _write(self, response: Response) -> int | None:
        """Send the response; returns the status sent, or None if the connection was dropped."""
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return None
        status = response.status
        bodiless = status in (204, 304) or status < 200
        try:
            self.send_response(status)
            if response.content_type and not bodiless:
                self.send_header("Content-Type", response.content_type)
            for key, value in response.headers.items():
                self.send_header(key, value)
            if not bodiless:
                self.send_header("Content-Length", str(response.content_length))
            self.end_headers()
            if bodiless or self.command == "HEAD":
                return status
            if response.body:
                self.wfile.write(response.body)
            for piece in response.slices:
                sent = self.connection.sendfile(piece.file, piece.offset, piece.length)
                if sent != piece.length:
                    raise ConnectionError(f"file ended after {sent} of {piece.length} bytes")
        except OSError:  # the client went away (or a file vanished): the connection cannot be reused
            self.close_connection = True
        return status


def _remove_dir(path: Path, owned: bool) -> None:
    """Delete the data directory if the server created it."""
    if owned:
        shutil.rmtree(path, ignore_errors=True)


class SandboxServer:
    """Local fakes of the platforms' HTTP APIs, for tests, demos and benchmarks.

    Usage::

        with SandboxServer(time_scale=0.05) as sandbox:
            sandbox.anaplan.configure("112000000001", outcome="fail")
            requests.post(f"{sandbox.url}/anaplan/auth/token/authenticate", auth=("demo@example.com", "demo"))

    ``port=0`` picks a free port (read it from :attr:`port` or :attr:`url` after :meth:`start`).
    ``time_scale`` multiplies emulated durations; ``token_ttl`` is the access-token lifetime in
    seconds. Content lives in ``data_dir`` (a private temporary directory by default, removed by
    :meth:`stop`). A server is started once and stopped once.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        token_ttl: float = 2100.0,
        *,
        data_dir: str | Path | None = None,
        verbose: bool = False,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.host = host
        self._requested_port = port
        self.verbose = verbose
        self.stats = Stats()
        self.faults = FaultInjector()
        self.rate_limits = RateLimiter()
        owned = data_dir is None
        self.data_dir = make_data_dir() if data_dir is None else Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._finalizer = weakref.finalize(self, _remove_dir, self.data_dir, owned)
        self.context = SandboxContext(
            time_scale=time_scale, token_ttl=token_ttl, data_dir=self.data_dir, stats=self.stats
        )
        self.platforms: dict[str, Platform] = {cls.name: cls(self.context) for cls in PLATFORMS}
        self.outages = OutageControl(self._close_listener, self._open_listener, list(self.platforms))
        mounts = [self._control_mount()]
        for platform in self.platforms.values():
            mounts.extend(platform.mounts())
        self._mounts = sorted(mounts, key=lambda m: len(m.prefix), reverse=True)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None
        self._stopped = False

    # ----------------------------------------------------------------------------------- lifecycle

    def start(self) -> SandboxServer:
        """Bind the socket and serve in a background thread; returns self."""
        if self._stopped:
            raise RuntimeError("a stopped SandboxServer cannot be restarted; create a new one")
        if self._bound_port is not None:
            return self
        self._listen(self._requested_port)
        return self

    def _listen(self, port: int) -> None:
        """Bind ``port`` and serve it on a background thread."""
        httpd = _HTTPServer((self.host, port), self)
        self._bound_port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name=f"sandbox-{self.port}", daemon=True
        )
        self._thread.start()

    def _close_listener(self) -> int:
        """A ``refuse`` outage: stop accepting, close the socket and cut open connections (their count)."""
        httpd, thread, self._httpd, self._thread = self._httpd, self._thread, None, None
        if httpd is None:
            return 0
        httpd.shutdown()
        cut = len(httpd._connections)
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        return cut

    def _open_listener(self) -> None:
        """The end of a ``refuse`` outage: bind the same port again (``OSError`` if it is taken)."""
        if not self._stopped and self._httpd is None and self._bound_port is not None:
            self._listen(self._bound_port)

    def stop(self) -> None:
        """Stop serving, close open connections, release the platforms and delete the data dir."""
        if self._stopped:
            return
        self._stopped = True
        self.outages.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for platform in self.platforms.values():
            platform.close()
        self._finalizer()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when started with ``port=0``)."""
        return self._requested_port if self._bound_port is None else self._bound_port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._bound_port is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------------------------- platforms

    @property
    def anaplan(self) -> AnaplanBackend:
        """The Anaplan backend (seed data, configuration and inspection from Python)."""
        platform = self.platforms["anaplan"]
        assert isinstance(platform, AnaplanPlatform)
        return platform.backend

    @property
    def sap_job_scheduling(self) -> JobSchedulingBackend:
        """The SAP BTP Job Scheduling backend (seed data, configuration and inspection from Python)."""
        platform = self.platforms["sap_job_scheduling"]
        assert isinstance(platform, SapJobSchedulingPlatform)
        return platform.backend

    @property
    def sap_cloud_integration(self) -> CloudIntegrationBackend:
        """The SAP Cloud Integration backend (configuration and inspection from Python)."""
        platform = self.platforms["sap_cloud_integration"]
        assert isinstance(platform, SapCloudIntegrationPlatform)
        return platform.backend

    @property
    def sap_data_intelligence(self) -> DataIntelligenceBackend:
        """The SAP Data Intelligence backend (flows, graphs, injected failures) from Python."""
        platform = self.platforms["sap_data_intelligence"]
        assert isinstance(platform, SapDataIntelligencePlatform)
        return platform.backend

    def outage(self, seconds: float, mode: str = "refuse", platform: str | None = None) -> dict[str, Any]:
        """Take the platforms (or one, for ``drop``/``503``) down for ``seconds``; see :mod:`.outage`."""
        return self.outages.start(seconds, mode, platform)

    def reset(self) -> None:
        """End any outage, clear stats, faults and rate limits and return every platform to its seed state."""
        self.outages.clear()
        self.stats.reset()
        self.faults.clear()
        self.rate_limits.clear()
        for platform in self.platforms.values():
            platform.reset()

    def connection_hints(self) -> list[str]:
        """For each platform, how to point an Airflow connection at this server."""
        lines: list[str] = []
        for platform in self.platforms.values():
            lines.extend(platform.connection_hints(self.url))
        return lines

    # -------------------------------------------------------------------------------------- dispatch

    def _find_mount(self, path: str) -> Mount | None:
        return next((m for m in self._mounts if m.owns(path)), None)

    def handle(self, request: Request) -> tuple[Response, int | None, bool]:
        """Serve one request through faults, auth and routing.

        Returns ``(response, fault rule id or None, counted in stats)``. Separate from the socket
        handler so it can be exercised without a network.
        """
        mount = self._find_mount(request.path)
        route: Route | None = None
        params: dict[str, str] = {}
        allowed: list[str] = []
        if mount is not None:
            route, params, allowed = mount.resolve(request.method, request.path)
        request.route = mount.route_key(route) if (mount and route) else f"{request.method} {request.path}"
        request.params = params

        if mount is not None and mount.control:
            return self._run(mount, route, allowed, request), None, False

        self.stats.record_request(request.route, mount.platform if mount else None, bool(mount and mount.auth_endpoint))
        down = self.outages.intercept(mount.platform if mount else None)
        if down is not None:
            return outage_response(down, mount, request), None, True
        if mount is not None and not mount.auth_endpoint:
            wait = self.rate_limits.admit(mount.platform)
            if wait is not None:
                response = mount.errors(request, 429, "Too Many Requests: the tenant's rate limit is exceeded")
                response.headers["Retry-After"] = retry_after_header(wait)
                return response, None, True
        rule = self.faults.match(request.method, request.path)
        fault_id = rule.id if rule else None
        if rule is not None:
            if rule.delay_seconds:
                time.sleep(rule.delay_seconds)
            injected = fault_response(rule)
            if injected is not None:
                return injected, fault_id, True
        if mount is None:
            body = {"status": {"code": 404, "message": f"Not Found: no sandbox platform serves {request.path}"}}
            return Response.json(body, status=404), fault_id, True
        return self._run(mount, route, allowed, request), fault_id, True

    @staticmethod
    def _run(mount: Mount, route: Route | None, allowed: list[str], request: Request) -> Response:
        """Guard, then route (404/405 rendered the platform's way)."""
        try:
            if mount.guard is not None:
                denied = mount.guard(request)
                if denied is not None:
                    return denied
            if route is None:
                if allowed:
                    response = mount.errors(request, 405, f"Method {request.method} not allowed for {request.path}")
                    response.headers["Allow"] = ", ".join(allowed)
                    return response
                return mount.errors(request, 404, f"Not Found: {request.path}")
            return route.handler(request)
        except HttpError as exc:
            return exc.response

    # ---------------------------------------------------------------------------------- control API

    def _control_mount(self) -> Mount:
        return Mount(
            prefix="/_sandbox",
            platform="_sandbox",
            control=True,
            routes=[
                Route("GET", "/health", self._health),
                Route("GET", "/stats", self._stats),
                Route("POST", "/reset", self._reset),
                Route("GET", "/faults", self._list_faults),
                Route("POST", "/faults", self._add_fault),
                Route("DELETE", "/faults", self._clear_faults),
                Route("GET", "/rate_limit", self._list_rate_limits),
                Route("POST", "/rate_limit", self._set_rate_limit),
                Route("DELETE", "/rate_limit", self._clear_rate_limits),
                *self.outages.routes(),
            ],
        )

    def _health(self, request: Request) -> Response:
        return Response.json(
            {
                "status": "ok",
                "url": request.base_url,
                "platforms": sorted(self.platforms),
                "time_scale": self.context.time_scale,
                "token_ttl": self.context.token_ttl,
            }
        )

    def _stats(self, request: Request) -> Response:
        try:
            tail = int(request.arg("log", "200") or 0)
        except ValueError:
            tail = 200
        return Response.json({**self.stats.to_dict(log_tail=tail), "rate_limits": self.rate_limits.to_dict()})

    def _reset(self, request: Request) -> Response:
        self.reset()
        return Response.json({"status": "reset"})

    def _list_faults(self, request: Request) -> Response:
        return Response.json({"faults": [rule.to_dict() for rule in self.faults.rules]})

    def _add_fault(self, request: Request) -> Response:
        data = request.json()
        items = data if isinstance(data, list) else [data]
        added = []
        for item in items:
            if not isinstance(item, dict):
                return Response.json({"error": "a fault rule is a JSON object"}, status=400)
            try:
                added.append(self.faults.add(FaultRule.from_dict(item)))
            except (TypeError, ValueError) as exc:
                return Response.json({"error": str(exc)}, status=400)
        payload: dict[str, Any] = {"faults": [rule.to_dict() for rule in added]}
        if not isinstance(data, list):
            payload = {"fault": added[0].to_dict()}
        return Response.json(payload, status=201)

    def _clear_faults(self, request: Request) -> Response:
        self.faults.clear()
        return Response.empty()

    def _list_rate_limits(self, request: Request) -> Response:
        return Response.json({"rate_limits": self.rate_limits.to_dict()})

    def _set_rate_limit(self, request: Request) -> Response:
        data = request.json()
        if not isinstance(data, dict):
            return Response.json({"error": 'send {"platform": "anaplan", "per_minute": 600}'}, status=400)
        unknown = set(data) - {"platform", "per_minute", "window_seconds"}
        if unknown:
            return Response.json({"error": f"unknown rate limit keys: {', '.join(sorted(unknown))}"}, status=400)
        platform = data.get("platform")
        if platform not in self.platforms:
            known = ", ".join(sorted(self.platforms))
            return Response.json({"error": f"platform must be one of {known}, got {platform!r}"}, status=400)
        try:
            self.rate_limits.set(platform, data.get("per_minute"), data.get("window_seconds", 60.0))
        except (TypeError, ValueError) as exc:
            return Response.json({"error": str(exc)}, status=400)
        return Response.json({"rate_limits": self.rate_limits.to_dict()}, status=201)

    def _clear_rate_limits(self, request: Request) -> Response:
        self.rate_limits.clear()
        return Response.empty()
