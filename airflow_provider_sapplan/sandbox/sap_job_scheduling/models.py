"""SAP Job Scheduling sandbox state: ids, limits, run states, time/filter parsing and the data classes.

Plain Python: no HTTP, no routing (the routes render these in :mod:`.routes`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

# ---------------------------------------------------------------------------------------- seed ids

CLIENT_ID = "sb-sandbox!b1|jobscheduler!b1"
CLIENT_SECRET = "sandbox-secret"
LITE_USER = "sandbox-user"
LITE_PASSWORD = "sandbox-password"
XSAPPNAME = "jobscheduler!b1"
IDENTITY_ZONE_ID = "6e7f8a9b-0c1d-4e2f-8a3b-4c5d6e7f8a9b"
SERVICE_INSTANCE_ID = "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"
SEED_JOB_ID = 1
SEED_JOB_NAME = "nightly_planning_refresh"
SEED_JOB_ACTION = "https://planning-app.example.com/refresh"

# -------------------------------------------------------------------------------------- constants

PREFIX = "/sap-job-scheduling"
UAA_PREFIX = f"{PREFIX}/uaa"
UAA_CERT_PREFIX = f"{PREFIX}/uaa-cert"
API_PREFIX = f"{PREFIX}/api"
CONTROL_PREFIX = "/_sandbox/sap_job_scheduling"

TOKEN_TTL_SECONDS = 43199.0  #: XSUAA's client-credentials token lifetime (12 h minus a second)
SERVER_DEFAULT_TOKEN_TTL = 2100.0  #: SandboxServer's default token_ttl (Anaplan's); see token_ttl
SCOPES = (f"{XSAPPNAME}.Job.Read", f"{XSAPPNAME}.Job.Configure", "uaa.resource")
MAX_BODY_BYTES = 100 * 1024  #: the service refuses bodies over 100 KB with 413
MAX_FORM_BYTES = 64 * 1024
DEFAULT_PAGE_SIZE = 10
MAX_JOB_PAGE_SIZE = 100  #: GET /scheduler/jobs?page_size above this answers 400
MAX_RUN_LOGS = 200  #: run logs and displayLogs return at most 200 entries

SCHEDULE_MODES = ("cron", "time", "repeatInterval", "repeatAt")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
JOB_TYPES = ("HTTP_ENDPOINT", "CF_TASK")
FILTER_PROPERTIES = ("name", "subDomain", "tenantId")
SORT_KEYS = ("_id", "jobId", "name", "description", "action", "active", "httpMethod", "createdAt", "jobType")

SCHEDULED = "SCHEDULED"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
TRIGGERED = "TRIGGERED"
ACK_RECVD = "ACK_RECVD"
SUCCESS = "SUCCESS"
ERROR = "ERROR"
REQUEST_ERROR = "REQUEST_ERROR"
UNKNOWN = "UNKNOWN"

OUTCOMES = ("success", "error", "request_error", "async", "async_timeout")
ASYNC_OUTCOMES = ("async", "async_timeout")

#: ``statusMessage`` of ``displayLogs`` entries per runState (the SCHEDULED and REQUEST_ERROR texts are SAP's)
STATUS_MESSAGES = {
    SCHEDULED: "The job has been scheduled for a future run",
    TRIGGERED: "Job execution request sent to the endpoint",
    ACK_RECVD: "Asynchronous job execution acknowledged by the endpoint",
    SUCCESS: "Job executed successfully",
    ERROR: "Job execution failed",
    REQUEST_ERROR: "Error encountered while sending job execution request to the endpoint",
    UNKNOWN: "The application did not update the run log of the asynchronous job in time",
}

_ERROR_TYPES = {
    400: "Bad Request/Invalid Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
}

#: Headers the service sends with every GET /scheduler/jobs answer until pagination is enforced.
DEPRECATION_HEADERS = {
    "X-Deprecation-Warning": (
        "Pagination will be enforced on 2026-10-26. Default pageSize=10, max=100. See: "
        "https://help.sap.com/docs/job-scheduling/sap-job-scheduling-service/pagination-guide-for-get-scheduler-job"
    ),
    "X-Breaking-Change-Date": "2026-10-26",
    "X-Breaking-Change-Type": "pagination-required",
    "X-Migration-Guide": (
        "https://help.sap.com/docs/job-scheduling/sap-job-scheduling-service/pagination-guide-for-get-scheduler-job"
    ),
    "Deprecation": "@1782345600",
    "Link": (
        "<https://help.sap.com/docs/job-scheduling/sap-job-scheduling-service/pagination-guide-for-get-scheduler-jobs>"
        '; rel="deprecation"; type="text/html"'
    ),
    "Sunset": "Mon, 26 October 2026 00:00:00 GMT",
}

_BAD_NAME = re.compile(r"[^\w.\- ]")
_RELATIVE_TIME = re.compile(
    r"^(?:in\s+)?(\d+(?:\.\d+)?)\s*(seconds?|secs?|minutes?|mins?|hours?|days?|weeks?)(\s+from\s+now)?$", re.I
)
_UNIT_SECONDS = {"sec": 1, "min": 60, "hou": 3600, "day": 86400, "wee": 604800}
_FILTER_TERM = re.compile(
    r"\s*(?:contains\(\s*(?P<cprop>\w+)\s*,\s*'(?P<cval>(?:[^']|'')*)'\s*\)"
    r"|eq\(\s*(?P<fprop>\w+)\s*,\s*'(?P<fval>(?:[^']|'')*)'\s*\)"
    r"|(?P<eprop>\w+)\s+eq\s+'(?P<eval>(?:[^']|'')*)')\s*",
    re.IGNORECASE,
)
_FILTER_JOIN = re.compile(r"(and|or)\b", re.IGNORECASE)


class JobSchedulingError(Exception):
    """A request the service refuses: HTTP status, ``message`` and ``detailedError``."""

    def __init__(self, status: int, message: str, detailed: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detailed = detailed or message


def _bad(message: str) -> JobSchedulingError:
    return JobSchedulingError(400, message)


# ------------------------------------------------------------------------------------ time helpers


def _space(ts: float | None) -> str | None:
    """Epoch seconds -> ``2017-08-10 11:00:00`` (UTC), the schedule and displayLogs format."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _iso(ts: float | None) -> str | None:
    """Epoch seconds -> ``2015-11-14T04:19:22`` (UTC), the run log API format."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _absolute_time(text: str) -> float:
    """ISO-8601 or RFC 2822 text -> epoch seconds (naive times are UTC); ValueError otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"cannot parse {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def parse_schedule_time(value: Any, now: float, scale: float) -> float:
    """A one-time schedule's ``time`` -> epoch seconds.

    Understands ``now``, ``in N <unit>`` / ``N <unit> from now`` (the offset is scaled by
    ``scale``), ISO-8601 and RFC 2822, as a string or as ``{"date": ..., "format": ...}``.
    """
    if isinstance(value, dict):
        value = value.get("date")
    if not isinstance(value, str) or not value.strip():
        raise ValueError("time must be a non-empty string")
    text = value.strip()
    if text.lower() == "now":
        return now
    relative = _RELATIVE_TIME.match(text)
    if relative and (text.lower().startswith("in ") or relative.group(3)):
        seconds = float(relative.group(1)) * _UNIT_SECONDS[relative.group(2).lower()[:3]]
        return now + seconds * scale
    return _absolute_time(text)


def _echo_time(value: Any) -> Any:
    """``startTime``/``endTime`` as the service echoes them: parsed into the space format, else as given."""
    if value is None:
        return None
    text = value.get("date") if isinstance(value, dict) else value
    if isinstance(text, str):
        try:
            return _space(_absolute_time(text.strip()))
        except ValueError:
            pass
    return value


def _parse_bool(value: Any, name: str, context: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _bad(f"{context}: '{name}' must be true or false")


def _data_string(value: Any, context: str) -> str | None:
    """Schedule ``data`` as stored and echoed: a JSON string."""
    if value is None:
        return None
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, str):
        return value
    raise _bad(f"{context}: 'data' must be a JSON object")


def parse_filter(text: str) -> list[list[tuple[str, str, str]]]:
    """``filter`` query option -> OR-groups of AND-ed ``(op, property, value)`` terms.

    Supports ``contains(prop, 'x')``, ``prop eq 'x'`` (and ``eq(prop, 'x')``), joined by ``and``
    (binding tighter) and ``or``; a doubled single quote stands for one. Raises ValueError.
    """
    groups: list[list[tuple[str, str, str]]] = [[]]
    pos = 0
    while True:
        match = _FILTER_TERM.match(text, pos)
        if match is None:
            raise ValueError(f"cannot parse the filter at {text[pos:]!r}")
        if match.group("cprop"):
            op, prop, value = "contains", match.group("cprop"), match.group("cval")
        elif match.group("fprop"):
            op, prop, value = "eq", match.group("fprop"), match.group("fval")
        else:
            op, prop, value = "eq", match.group("eprop"), match.group("eval")
        canonical = next((p for p in FILTER_PROPERTIES if p.lower() == prop.lower()), None)
        if canonical is None:
            raise ValueError(f"cannot filter on {prop!r}; use one of {', '.join(FILTER_PROPERTIES)}")
        groups[-1].append((op, canonical, value.replace("''", "'")))
        pos = match.end()
        if pos >= len(text):
            return groups
        joiner = _FILTER_JOIN.match(text, pos)
        if joiner is None:
            raise ValueError(f"expected 'and' or 'or' at {text[pos:]!r}")
        if joiner.group(1).lower() == "or":
            groups.append([])
        pos = joiner.end()


# ------------------------------------------------------------------------------------ state model


@dataclass
class JobConfig:
    """How runs of one job behave: outcome and emulated durations (seconds, scaled by time_scale).

    ``scheduled_seconds``: SCHEDULED until the action is called; ``running_seconds``: how long the
    action takes to answer (RUNNING/TRIGGERED; for asynchronous outcomes, until its 202);
    ``async_timeout_seconds``: for ``async_timeout``, from the 202 until COMPLETED/UNKNOWN.
    """

    outcome: str = "success"
    scheduled_seconds: float = 0.5
    running_seconds: float = 1.0
    async_timeout_seconds: float = 5.0

    def validate(self) -> None:
        """Raise ValueError for values a run cannot work with."""
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")
        if min(self.scheduled_seconds, self.running_seconds, self.async_timeout_seconds) < 0:
            raise ValueError("scheduled_seconds, running_seconds and async_timeout_seconds must not be negative")


@dataclass
class Token:
    """An issued XSUAA access token."""

    value: str
    jti: str
    client_id: str
    grant: str
    expires_at: float


@dataclass
class RunView:
    """A run as seen at one moment: states, HTTP status, text, timestamps and its event log."""

    status: str
    state: str
    http_status: int | None
    text: str
    executed: float | None
    completed: float | None
    events: list[tuple[float, str, str, int | None]]


@dataclass
class Run:
    """One execution of a schedule; its state is derived from timestamps (epoch seconds)."""

    id: str
    job_id: int
    schedule_id: str
    scheduled_at: float
    triggered_at: float
    answered_at: float
    timeout_at: float | None
    config: JobConfig
    request_line: str
    callback_at: float | None = None
    callback_success: bool | None = None
    callback_message: str = ""

    @property
    def asynchronous(self) -> bool:
        """True when the action answers 202 and the application reports the result later."""
        return self.config.outcome in ASYNC_OUTCOMES

    def completed_at(self) -> float | None:
        """When the run reaches COMPLETED, or None while that is not known (async, no update yet)."""
        if self.callback_at is not None:
            return self.callback_at
        if not self.asynchronous:
            return self.answered_at
        return self.timeout_at

    def view(self, now: float) -> RunView:
        """The run at time ``now``."""
        events: list[tuple[float, str, str, int | None]] = [(self.scheduled_at, SCHEDULED, "", None)]
        if now < self.triggered_at:
            return RunView(SCHEDULED, SCHEDULED, None, "", None, None, events)
        events.append((self.triggered_at, TRIGGERED, "", None))
        http_status: int | None = None
        if self.asynchronous and now >= self.answered_at:
            events.append((self.answered_at, ACK_RECVD, "", 202))
            http_status = 202
        done = self.completed_at()
        if done is None or now < done:
            state = ACK_RECVD if http_status == 202 else TRIGGERED
            return RunView(RUNNING, state, http_status, "", self.triggered_at, None, events)
        if self.callback_at is not None:
            state = SUCCESS if self.callback_success else ERROR
            text = self.callback_message
        elif self.config.outcome == "success":
            state, http_status, text = SUCCESS, 200, "OK"
        elif self.config.outcome == "error":
            state, http_status, text = ERROR, 500, "Internal Server Error"
        elif self.config.outcome == "request_error":
            state, http_status, text = REQUEST_ERROR, 404, f"Response: Cannot {self.request_line}\n"
        else:  # async_timeout without an update
            state = UNKNOWN
            text = (
                "The application did not update the run log within "
                f"{self.config.async_timeout_seconds:g} seconds of acknowledging the request"
            )
        events.append((done, state, text, http_status))
        return RunView(COMPLETED, state, http_status, text, self.triggered_at, done, events)


@dataclass
class Schedule:
    """A job schedule; ``mode`` is one of cron, time, repeatInterval, repeatAt."""

    id: str
    job_id: int
    mode: str
    value: str
    active: bool
    description: str
    data: str | None
    start_time: Any
    end_time: Any
    created: float
    time_at: float | None = None  #: one-time: the resolved execution time
    due_at: float | None = None  #: one-time, armed: when its run is created
    fired: bool = False
    runs: dict[str, Run] = field(default_factory=dict)

    @property
    def one_time(self) -> bool:
        """True for ``time`` schedules (the only ones that run in the sandbox)."""
        return self.mode == "time"

    def to_json(self, *, with_job_id: bool = False) -> dict[str, Any]:
        """The schedule object of the schedule endpoints."""
        out: dict[str, Any] = {
            "scheduleId": self.id,
            "description": self.description,
            "data": self.data,
            "type": "one-time" if self.one_time else "recurring",
            "cron": self.value if self.mode == "cron" else None,
            "repeatInterval": self.value if self.mode == "repeatInterval" else None,
            "repeatAt": self.value if self.mode == "repeatAt" else None,
            "time": _space(self.time_at) if self.one_time else None,
            "active": self.active,
            "startTime": _echo_time(self.start_time),
            "endTime": _echo_time(self.end_time),
            "nextRunAt": _space(self.due_at) if self.due_at is not None else None,
        }
        if with_job_id:
            out["jobId"] = self.job_id
        return out


@dataclass
class Job:
    """A job (HTTP_ENDPOINT) and its schedules."""

    id: int
    name: str
    action: str
    http_method: str
    active: bool
    description: str
    created: float
    start_time: Any = None
    end_time: Any = None
    user: str | None = None
    ans_config: dict[str, Any] | None = None
    calm_config: dict[str, Any] | None = None
    schedules: dict[str, Schedule] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The job object of the job details and create endpoints."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "action": self.action,
            "user": self.user,
            "httpMethod": self.http_method,
            "startTime": _echo_time(self.start_time),
            "endTime": _echo_time(self.end_time),
            "signatureVersion": 0,
            "active": self.active,
        }
        if self.ans_config is not None:
            out["ansConfig"] = dict(self.ans_config)
        if self.calm_config is not None:
            out["calmConfig"] = dict(self.calm_config)
        out["_id"] = self.id
        return out

    def to_list_item(self) -> dict[str, Any]:
        """An entry of GET /scheduler/jobs."""
        active = sum(1 for s in self.schedules.values() if s.active)
        item: dict[str, Any] = {"jobId": self.id, **self.to_json()}
        item.update(
            {
                "jobType": "HTTP_ENDPOINT",
                "subDomain": None,
                "createdAt": _space(self.created),
                "ACTIVECOUNT": active,
                "INACTIVECOUNT": len(self.schedules) - active,
            }
        )
        return item


def _run_log_json(run: Run, view: RunView) -> dict[str, Any]:
    """A run as the run log API shows it (``T``-separated timestamps, plain ``runText``)."""
    return {
        "runId": run.id,
        "runText": view.text,
        "httpStatus": view.http_status,
        "executionTimestamp": _iso(view.executed),
        "runStatus": view.status,
        "runState": view.state,
        "scheduleTimestamp": _iso(run.scheduled_at),
        "completionTimestamp": _iso(view.completed),
    }


def _display_log_json(run: Run, view: RunView) -> dict[str, Any]:
    """A run as ``displayLogs=true`` shows it: space-separated timestamps, ``runText`` a JSON array string."""
    events = [{"time": _space(t), "type": kind, "text": text, "code": code} for t, kind, text, code in view.events]
    return {
        "runId": run.id,
        "httpStatus": view.http_status,
        "executionTimestamp": _space(view.executed),
        "runStatus": view.status,
        "runState": view.state,
        "statusMessage": STATUS_MESSAGES[view.state],
        "scheduleTimestamp": _space(run.scheduled_at),
        "completionTimestamp": _space(view.completed),
        "runText": json.dumps(events, separators=(",", ":")),
        "locale": "en",
    }
