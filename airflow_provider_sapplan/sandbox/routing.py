"""HTTP building blocks shared by every sandbox platform: request, response, route and mount.

The sandbox keeps platform *state* (backends) apart from HTTP *rendering* (routes), like moto.
A platform module exposes one or more :class:`Mount` objects (a URL prefix plus its routes); the
server in :mod:`.server` owns the sockets, fault injection and statistics and dispatches each
request to the mount whose prefix matches. Nothing here knows about a particular platform.

Bodies are never read eagerly: :class:`BodyReader` hands out the request body in pieces so that a
50 MB file chunk streams to disk, and :class:`Response` can carry open file slices that the server
streams back with ``socket.sendfile``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import IO, Any
from urllib.parse import parse_qs

#: Size of one read from a request body or one write of a response body: bounded memory per request.
IO_BLOCK = 1024 * 1024

#: Largest JSON body a route will parse; bigger bodies are a client bug, answered with 400.
MAX_JSON_BODY = 10 * 1024 * 1024


class BodyTooLargeError(Exception):
    """The request body is larger than the route accepts."""


class BodyReader:
    """Piecewise reader of one request body, framed by Content-Length or chunked transfer coding.

    It never reads past the end of the body, so the connection stays usable for keep-alive, and it
    remembers whether the body was consumed so the server can drain what a route left unread.
    """

    def __init__(self, rfile: io.BufferedIOBase, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self._remaining = 0 if length is None else max(length, 0)
        self._chunked = chunked
        self._chunk_left = 0
        self._eof = not chunked and self._remaining == 0
        self.bytes_read = 0

    @property
    def finished(self) -> bool:
        """True once the whole body has been read (or there was none)."""
        return self._eof

    @property
    def declared_length(self) -> int | None:
        """Content-Length of the body, or None for a chunked body."""
        return None if self._chunked else self._remaining + self.bytes_read

    def readinto(self, buf: memoryview) -> int:
        """Read up to ``len(buf)`` body bytes into ``buf``; 0 means end of body."""
        if self._eof or len(buf) == 0:
            return 0
        if self._chunked:
            data = self._read_chunked(len(buf))
            buf[: len(data)] = data
            return len(data)
        want = min(len(buf), self._remaining)
        got = self._rfile.readinto(buf[:want])
        if not got:
            raise ConnectionError("client closed the connection in the middle of the request body")
        self._remaining -= got
        self.bytes_read += got
        if self._remaining == 0:
            self._eof = True
        return int(got)

    def read(self, size: int = IO_BLOCK) -> bytes:
        """Read up to ``size`` bytes of body; ``b""`` means end of body."""
        buf = bytearray(size)
        n = self.readinto(memoryview(buf))
        del buf[n:]
        return bytes(buf)

    def read_all(self, limit: int = MAX_JSON_BODY) -> bytes:
        """Read the rest of the body into memory, refusing bodies over ``limit`` bytes."""
        parts: list[bytes] = []
        total = 0
        while True:
            piece = self.read(IO_BLOCK)
            if not piece:
                return b"".join(parts)
            total += len(piece)
            if total > limit:
                raise BodyTooLargeError(f"request body larger than {limit} bytes")
            parts.append(piece)

    def drain(self) -> int:
        """Discard whatever is left of the body (so keep-alive works); returns the bytes discarded."""
        buf = memoryview(bytearray(IO_BLOCK))
        total = 0
        while True:
            n = self.readinto(buf)
            if not n:
                return total
            total += n

    def _read_chunked(self, size: int) -> bytes:
        """Decode the next piece of a ``Transfer-Encoding: chunked`` body."""
        if self._chunk_left == 0:
            line = self._rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed the connection in the middle of a chunked body")
            try:
                chunk_size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise ConnectionError(f"malformed chunk size line {line!r}") from exc
            if chunk_size == 0:
                while True:  # optional trailers, ended by an empty line
                    trailer = self._rfile.readline(65537)
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                self._eof = True
                return b""
            self._chunk_left = chunk_size
        data = self._rfile.read(min(size, self._chunk_left))
        if not data:
            raise ConnectionError("client closed the connection in the middle of a chunked body")
        self._chunk_left -= len(data)
        self.bytes_read += len(data)
        if self._chunk_left == 0:
            self._rfile.readline(3)  # the CRLF after the chunk data
        return data


@dataclass
class FileSlice:
    """A byte range of an open file that a response streams to the client."""

    file: IO[bytes]
    offset: int
    length: int


@dataclass
class Request:
    """One parsed HTTP request as a route sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: BodyReader
    base_url: str
    params: dict[str, str] = field(default_factory=dict)
    route: str = ""

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of query parameter ``name`` (query names are case-sensitive, like Anaplan)."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str = "") -> str:
        """Value of a request header (case-insensitive name)."""
        value = self.headers.get(name)
        return default if value is None else str(value)

    def json(self, *, required: bool = True) -> Any:
        """Parse the body as JSON; raises :class:`HttpError` (400) when it is not JSON.

        With ``required=False`` an empty body gives ``None`` instead of an error.
        """
        try:
            raw = self.body.read_all()
        except BodyTooLargeError as exc:
            raise HttpError(Response.json({"error": str(exc)}, status=400)) from exc
        if not raw.strip():
            if required:
                raise HttpError(Response.json({"error": "a JSON request body is required"}, status=400))
            return None
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(Response.json({"error": f"request body is not JSON: {exc}"}, status=400)) from exc


@dataclass
class Response:
    """What a route returns: status, headers and either an in-memory body or file slices to stream.

    ``drop=True`` tells the server to close the connection without answering (a fault).
    """

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    slices: list[FileSlice] = field(default_factory=list)
    drop: bool = False

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """A JSON response."""
        body = json.dumps(obj, separators=(",", ":")).encode()
        return cls(status=status, body=body, content_type="application/json", headers=dict(headers or {}))

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        """A response without a body (204 by default)."""
        return cls(status=status, body=b"", content_type=None)

    @classmethod
    def stream(cls, slices: list[FileSlice], content_type: str = "application/octet-stream") -> Response:
        """A response whose body is the concatenation of open file slices."""
        return cls(status=200, content_type=content_type, slices=slices)

    @property
    def content_length(self) -> int:
        """Number of body bytes the response will send."""
        return len(self.body) + sum(s.length for s in self.slices)

    def close(self) -> None:
        """Close the files behind the slices (always called by the server, also on errors)."""
        for piece in self.slices:
            with contextlib.suppress(OSError):
                piece.file.close()


class HttpError(Exception):
    """Raised by routes and backends' HTTP adapters to answer with a prepared response."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


Handler = Callable[[Request], Response]
Guard = Callable[[Request], "Response | None"]
ErrorRenderer = Callable[[Request, int, str], Response]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Route:
    """One endpoint: method, path template relative to its mount (``/files/{file}``) and handler."""

    method: str
    template: str
    handler: Handler
    _regex: re.Pattern[str] = field(init=False, repr=False)
    _names: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        self._names = _PARAM.findall(self.template)
        pattern = ""
        pos = 0
        for index, match in enumerate(_PARAM.finditer(self.template)):
            pattern += re.escape(self.template[pos : match.start()]) + f"(?P<p{index}>[^/]+)"
            pos = match.end()
        pattern += re.escape(self.template[pos:])
        self._regex = re.compile(f"^{pattern}$")

    def match(self, path: str) -> dict[str, str] | None:
        """Path parameters if ``path`` (relative to the mount) matches the template, else None."""
        found = self._regex.match(path)
        if found is None:
            return None
        return {name: found.group(f"p{i}") for i, name in enumerate(self._names)}


def _default_errors(request: Request, status: int, message: str) -> Response:
    """Plain JSON error body used when a mount does not render errors its own way."""
    return Response.json({"status": status, "error": message, "path": request.path}, status=status)


@dataclass
class Mount:
    """A URL prefix served by one platform, with its routes.

    ``guard`` runs for every request under the prefix before routing (authentication); it returns a
    response to answer with, or None to continue. ``auth_endpoint`` marks mounts whose requests are
    counted in ``stats.auth_requests[platform]``. ``control`` mounts (under ``/_sandbox``) are
    exempt from faults and are not counted in the statistics.
    """

    prefix: str
    platform: str
    routes: list[Route]
    guard: Guard | None = None
    errors: ErrorRenderer = _default_errors
    auth_endpoint: bool = False
    control: bool = False

    def owns(self, path: str) -> bool:
        """True if ``path`` lies under this mount's prefix."""
        return path == self.prefix or path.startswith(self.prefix + "/")

    def resolve(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """Find the route for ``method`` and ``path``.

        Returns ``(route, params, allowed_methods)``; ``route`` is None when nothing matches, and
        then ``allowed_methods`` is non-empty if the path exists for other methods (405).
        """
        rel = path[len(self.prefix) :] or "/"
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(rel)
            if params is None:
                continue
            if route.method == method:
                return route, params, []
            allowed.append(route.method)
        return None, {}, sorted(set(allowed))

    def route_key(self, route: Route) -> str:
        """Statistics key of a route: ``"METHOD /prefix/template"``."""
        return f"{route.method} {self.prefix}{route.template}"


def parse_query(raw: str) -> dict[str, list[str]]:
    """Parse a query string, keeping blank values (``?flag=``)."""
    return parse_qs(raw, keep_blank_values=True)


def normalize_path(path: str) -> str:
    """Strip a trailing slash (Anaplan's docs show both ``/imports`` and ``/imports/``)."""
    if len(path) > 1 and path.endswith("/"):
        return path.rstrip("/") or "/"
    return path
