"""Platform outages on demand: for N wall-clock seconds the sandbox stops answering, then comes back.

Long waits must survive a platform that is down for minutes (a maintenance window, a gateway
restart). An outage makes every request outside ``/_sandbox`` (or, for ``drop`` and ``503``, only
one platform's) fail the same way until it ends:

* ``refuse``: the listening socket is closed, so new TCP connections are refused by the kernel, and
  the open keep-alive connections are cut; when the outage ends the same port is bound again. The
  control API is unreachable too while it lasts, so the outage is started from Python
  (:meth:`OutageControl.start`) or over HTTP (the answer is written first, the socket closes a
  moment later) and ended by a server-side timer (or :meth:`OutageControl.end` from Python).
  Refused connections never reach the server, so they cannot be counted; ``connections_cut``
  counts the connections closed when it began, ``dropped`` any request still read from one.
* ``drop``: connections are accepted and each request is answered by closing the connection.
* ``503``: each request is answered 503 in the platform's error shape, without ``Retry-After``.

One outage at a time; ``POST /_sandbox/reset`` (and :meth:`OutageControl.clear`) ends it at once and
forgets the history. Every outage is kept in :attr:`OutageControl.history` with when it really began
and ended (for ``refuse``: when the port was bound again) and what it did, so tests can measure how
long clients took to notice the platform was back.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .routing import Mount, Request, Response, Route

#: The ways an outage can fail requests.
MODES = ("refuse", "drop", "503")
#: The longest outage accepted, in seconds (a day).
MAX_SECONDS = 86_400.0
#: How long the control API's ``refuse`` waits before closing the socket, so its own answer gets out.
HTTP_REFUSE_DELAY = 0.2
#: How long ending a ``refuse`` outage keeps trying to bind the port again if something else holds it.
REBIND_PATIENCE = 30.0

OUTAGE_MESSAGE = "Service Unavailable: the platform is down (sandbox outage)"


@dataclass
class Outage:
    """One outage: what it does, when it began and ends, and what it did to requests."""

    id: int
    mode: str
    seconds: float
    platform: str | None
    started_at: float
    ends_at: float
    ended_at: float | None = None
    dropped: int = 0
    answered_503: int = 0
    connections_cut: int = 0
    rebind_error: str | None = None

    def hits(self, platform: str | None, now: float) -> bool:
        """Whether a request of ``platform`` arriving at ``now`` fails because of this outage."""
        if self.ended_at is not None or not self.started_at <= now < self.ends_at:
            return False
        return self.platform is None or self.platform == platform

    def to_dict(self, now: float) -> dict[str, Any]:
        """JSON form, with the seconds left while it lasts."""
        data = asdict(self)
        data["remaining"] = 0.0 if self.ended_at is not None else round(max(self.ends_at - now, 0.0), 3)
        return data


class OutageControl:
    """Starts, ends and reports outages for one :class:`~.server.SandboxServer`.

    :param close_listener: closes the listening socket and every open connection; returns how many
        connections it cut (``refuse``).
    :param open_listener: binds the same port again and serves on it (raises ``OSError`` if it cannot).
    :param platforms: the platform names a ``platform`` filter may take.
    """

    def __init__(
        self,
        close_listener: Callable[[], int],
        open_listener: Callable[[], None],
        platforms: list[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._close_listener = close_listener
        self._open_listener = open_listener
        self._platforms = sorted(platforms)
        self._clock = clock
        self._lock = threading.Lock()
        self._listener_lock = threading.RLock()  # close/open never run at the same time
        self._listening = True
        self._closed = False
        self._next_id = 1
        self._current: Outage | None = None
        self._timer: threading.Timer | None = None
        self.history: list[Outage] = []

    # -- Python API -------------------------------------------------------------------------------

    def start(
        self, seconds: float, mode: str = "refuse", platform: str | None = None, *, delay: float = 0.0
    ) -> dict[str, Any]:
        """Begin an outage of ``seconds`` wall-clock seconds (after ``delay``); returns its JSON form.

        Raises ``ValueError`` naming the fix for a bad argument, ``RuntimeError`` when one is in progress.
        """
        seconds = _positive_seconds(seconds)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if platform is not None and platform not in self._platforms:
            raise ValueError(f"platform must be one of {', '.join(self._platforms)}, got {platform!r}")
        if platform is not None and mode == "refuse":
            raise ValueError(
                "a refuse outage closes the server's one listening socket, so it takes every platform down; "
                'use mode "drop" or "503" to take down only one platform'
            )
        with self._lock:
            if self._closed:
                raise RuntimeError("the sandbox is stopped")
            if self._current is not None:
                raise RuntimeError("an outage is already in progress; end it first (DELETE /_sandbox/outage)")
            now = self._clock()
            outage = Outage(self._next_id, mode, seconds, platform, now + delay, now + delay + seconds)
            self._next_id += 1
            self._current = outage
            self.history.append(outage)
            self._timer = threading.Timer(delay + seconds, self._expire, args=(outage,))
            self._timer.daemon = True
            self._timer.start()
        if mode == "refuse":
            if delay > 0:
                later = threading.Timer(delay, self._take_down, args=(outage,))
                later.daemon = True
                later.start()
            else:
                self._take_down(outage)
        return outage.to_dict(self._clock())

    def end(self) -> dict[str, Any] | None:
        """End the current outage now (binding the port again after ``refuse``); its JSON form, or None."""
        with self._lock:
            outage = self._current
        if outage is None:
            return None
        self._finish(outage)
        return outage.to_dict(self._clock())

    def clear(self) -> None:
        """End any outage and forget them all (``POST /_sandbox/reset``)."""
        self.end()
        with self._lock:
            self.history.clear()

    def close(self) -> None:
        """The server is stopping: cancel the timer; the port is not bound again."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
            if self._current is not None:
                self._current.ended_at = self._clock()
                self._current = None
        if timer is not None:
            timer.cancel()

    @property
    def active(self) -> Outage | None:
        """The outage in progress (begun or about to begin), or None."""
        with self._lock:
            return self._current

    @property
    def listening(self) -> bool:
        """False while a ``refuse`` outage keeps the port closed."""
        return self._listening

    def wait_over(self, timeout: float | None = None) -> bool:
        """Block until no outage is in progress (True), or ``timeout`` seconds passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.active is not None:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def intercept(self, platform: str | None) -> str | None:
        """How a request of ``platform`` fails now (``"drop"`` or ``"503"``, counted), or None to serve it."""
        with self._lock:
            outage = self._current
            if outage is None or not outage.hits(platform, self._clock()):
                return None
            if outage.mode == "503":
                outage.answered_503 += 1
                return "503"
            outage.dropped += 1  # drop, or a refuse outage's request read from a connection not yet cut
            return "drop"

    def to_dict(self) -> dict[str, Any]:
        """JSON form served by ``GET /_sandbox/outage``."""
        with self._lock:
            now = self._clock()
            current = self._current.to_dict(now) if self._current else None
            history = [outage.to_dict(now) for outage in self.history]
        totals = {key: sum(item[key] for item in history) for key in ("dropped", "answered_503", "connections_cut")}
        return {
            "active": current is not None,
            "listening": self._listening,
            "current": current,
            "history": history,
            "totals": {"outages": len(history), **totals},
        }

    # -- HTTP control API -------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """``GET``/``POST``/``DELETE /_sandbox/outage``, for the server's control mount."""
        return [
            Route("GET", "/outage", lambda request: Response.json(self.to_dict())),
            Route("POST", "/outage", self._post),
            Route("DELETE", "/outage", self._delete),
        ]

    def _post(self, request: Request) -> Response:
        data = request.json()
        if not isinstance(data, dict):
            return Response.json({"error": 'send {"seconds": 60, "mode": "refuse"|"drop"|"503"}'}, status=400)
        unknown = set(data) - {"seconds", "mode", "platform"}
        if unknown:
            return Response.json({"error": f"unknown outage keys: {', '.join(sorted(unknown))}"}, status=400)
        if "seconds" not in data:
            return Response.json({"error": 'give the outage\'s length: {"seconds": 60}'}, status=400)
        mode = data.get("mode", "refuse")
        try:
            # Over HTTP, a refuse outage closes the socket a moment later, once this answer is out.
            outage = self.start(
                data["seconds"], mode, data.get("platform"), delay=HTTP_REFUSE_DELAY if mode == "refuse" else 0.0
            )
        except ValueError as exc:
            return Response.json({"error": str(exc)}, status=400)
        except RuntimeError as exc:
            return Response.json({"error": str(exc)}, status=409)
        return Response.json({"outage": outage}, status=201)

    def _delete(self, request: Request) -> Response:
        ended = self.end()
        return Response.json({"ended": ended})

    # -- internals --------------------------------------------------------------------------------

    def _take_down(self, outage: Outage) -> None:
        """Close the port for a refuse outage (unless it was ended or replaced meanwhile)."""
        with self._listener_lock:
            with self._lock:
                if self._current is not outage or self._closed or not self._listening:
                    return
                self._listening = False
            cut = self._close_listener()
            with self._lock:
                outage.connections_cut += cut

    def _expire(self, outage: Outage) -> None:
        """The timer fired: end ``outage`` if it is still the current one."""
        self._finish(outage)

    def _finish(self, outage: Outage) -> None:
        with self._listener_lock:
            with self._lock:
                if self._current is not outage:
                    return
                timer, self._timer = self._timer, None
                closed = self._closed
            if timer is not None and timer is not threading.current_thread():
                timer.cancel()
            error = None if closed or self._listening else self._rebind()
            with self._lock:
                outage.rebind_error = error
                outage.ended_at = self._clock()
                self._current = None

    def _rebind(self) -> str | None:
        """Bind the port again (retrying while something else holds it); the error, or None."""
        deadline = time.monotonic() + REBIND_PATIENCE
        while True:
            try:
                self._open_listener()
            except OSError as exc:
                if time.monotonic() >= deadline:
                    print(f"sandbox: could not bind the port again after the outage: {exc}", file=sys.stderr)
                    return f"{type(exc).__name__}: {exc}"
                time.sleep(0.1)
                continue
            self._listening = True
            return None


def _positive_seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"seconds must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be above 0 and at most {MAX_SECONDS:g}, got {value!r}")
    return seconds


def outage_response(failure: str, mount: Mount | None, request: Request) -> Response:
    """The answer :meth:`OutageControl.intercept` chose: a dropped connection, or a 503 in the platform's shape."""
    if failure == "drop":
        return Response(status=0, drop=True)
    if mount is not None:
        return mount.errors(request, 503, OUTAGE_MESSAGE)
    return Response.json({"status": {"code": 503, "message": OUTAGE_MESSAGE}}, status=503)
