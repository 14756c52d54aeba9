"""What the sandbox was asked: request counts per endpoint, auth requests, task starts, created files.

Tests assert on behaviour through these numbers (a client that re-authenticates on every call, a
retry that was or was not made, an upload that silently created a file). Every platform records
into the same :class:`Stats` object; the server records the request counts itself.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

#: How many recent requests :attr:`Stats.log` keeps.
LOG_SIZE = 10_000


@dataclass(frozen=True)
class RequestRecord:
    """One served request: when, what, which route template, which answer (None = dropped)."""

    time: float
    method: str
    path: str
    route: str
    status: int | None
    fault: int | None


class Stats:
    """Thread-safe counters, reset by ``POST /_sandbox/reset``.

    - ``total``: requests served outside ``/_sandbox``;
    - ``requests``: per ``"METHOD /prefix/route-template"`` (unmatched paths under their raw path);
    - ``auth_requests``: per platform, requests to its authentication endpoints;
    - ``tasks_started``: per action id, tasks started through the API;
    - ``files_created``: ``"<model id>/<file id>"`` of files the API created implicitly;
    - ``statuses``: per HTTP status answered (``0`` for dropped connections);
    - ``faults_applied``: requests hit by a fault;
    - ``log``: the last :data:`LOG_SIZE` requests as :class:`RequestRecord`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.requests: Counter[str] = Counter()
        self.auth_requests: Counter[str] = Counter()
        self.tasks_started: Counter[str] = Counter()
        self.files_created: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.faults_applied = 0
        self.log: deque[RequestRecord] = deque(maxlen=LOG_SIZE)

    def reset(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self.total = 0
            self.requests.clear()
            self.auth_requests.clear()
            self.tasks_started.clear()
            self.files_created.clear()
            self.statuses.clear()
            self.faults_applied = 0
            self.log.clear()

    def record_request(self, route: str, platform: str | None, auth: bool) -> None:
        """Count one incoming request (called before faults, auth and routing)."""
        with self._lock:
            self.total += 1
            self.requests[route] += 1
            if auth and platform:
                self.auth_requests[platform] += 1

    def record_response(self, method: str, path: str, route: str, status: int | None, fault: int | None) -> None:
        """Record how a request was answered (``status=None``: the connection was dropped)."""
        with self._lock:
            self.statuses[status or 0] += 1
            if fault is not None:
                self.faults_applied += 1
            self.log.append(RequestRecord(time.time(), method, path, route, status, fault))

    def record_task_started(self, action_id: str) -> None:
        """Count one task started for ``action_id``."""
        with self._lock:
            self.tasks_started[action_id] += 1

    def record_file_created(self, key: str) -> None:
        """Remember a file that the API created implicitly."""
        with self._lock:
            self.files_created.append(key)

    def count(self, method: str, route: str) -> int:
        """Requests counted for ``route`` (a full template, e.g. ``/anaplan/api/2/0/workspaces``)."""
        with self._lock:
            return self.requests[f"{method.upper()} {route}"]

    def to_dict(self, log_tail: int = 200) -> dict[str, Any]:
        """JSON form served by ``GET /_sandbox/stats`` (with the last ``log_tail`` log records)."""
        with self._lock:
            log = list(self.log)[-log_tail:] if log_tail else []
            return {
                "total": self.total,
                "requests": dict(self.requests),
                "auth_requests": dict(self.auth_requests),
                "tasks_started": dict(self.tasks_started),
                "files_created": list(self.files_created),
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "faults_applied": self.faults_applied,
                "log": [asdict(r) for r in log],
            }
