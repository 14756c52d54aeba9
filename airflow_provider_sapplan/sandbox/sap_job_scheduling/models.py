"""SAP BTP Job Scheduling Service, emulated: XSUAA token endpoints and the REST API (jobs, schedules, runs).

Faithful to SAP's documentation (SAP-docs/btp-job-scheduling-service, see ``shared/reference``): the
same paths under the service key's ``url``, the ``{"total","results","prev_url","next_url"}``
envelope with ``page_size``/``offset`` (default 10, jobs at most 100), the documented error body
``{"code","message","type","detailedError"}``, ``data`` echoed back as a JSON *string*, auto-increment
job ``_id`` and UUID ``scheduleId``/``runId``, the run state machine (runStatus/runState)
SCHEDULED/SCHEDULED -> RUNNING/TRIGGERED (-> RUNNING/ACK_RECVD for asynchronous actions) ->
COMPLETED/SUCCESS | ERROR | REQUEST_ERROR | UNKNOWN, the two timestamp formats (``T``-separated in
the run log API, space-separated in ``displayLogs`` and schedules), the 100 KB body limit (413)
and one-time schedules deactivated once their run completed.

:class:`JobSchedulingBackend` holds the state and is scriptable from Python
(``server.sap_job_scheduling``); :class:`SapJobSchedulingPlatform` renders it over HTTP under
``/sap-job-scheduling/uaa`` (client secret), ``/sap-job-scheduling/uaa-cert`` (x509) and
``/sap-job-scheduling/api`` (the service key's ``url``), with a control API under
``/_sandbox/sap_job_scheduling``. Nothing calls the jobs' action URLs: the outcome of a run is
configured per job (``success``, ``error``, ``request_error``, ``async``, ``async_timeout``) and
run states are computed lazily from timestamps, like Anaplan tasks, so no background thread is
needed.

Deliberate simplifications (documented for test authors):

- only one-time (``time``) schedules produce runs, exactly one each; ``cron``, ``repeatInterval``
  and ``repeatAt`` schedules are validated and stored but stay inert (``nextRunAt`` null);
- ``time`` understands ``now``, ``in N minutes`` / ``N minutes from now`` (seconds to weeks; the
  offset is an emulated duration, scaled by ``time_scale``), ISO-8601 and RFC 2822 (absolute
  times are wall-clock, never scaled); other human-readable texts ("tomorrow at 2am") answer 400;
- the x509 token endpoint cannot verify the client certificate (the sandbox speaks plain HTTP):
  it issues a token for the known ``client_id``;
- tokens live ``43199`` s like XSUAA's, unless the server was started with a ``token_ttl`` other
  than its default (then that one, so short-expiry tests cover every platform at once);
- rate limits come from the server's generic fault rules (429 ``retry-after``, 503
  ``throttling``); :meth:`JobSchedulingBackend.set_throttling` adds the ``throttling`` header
  (and the delay) to successful answers, as the service does near its limits.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..platform import Platform, SandboxContext
from ..routing import BodyTooLargeError, Handler, HttpError, Mount, Request, Response, Route

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


# ----------------------------------------------------------------------------------- the backend


class JobSchedulingBackend:
    """State and behaviour of the emulated Job Scheduling instance; every public method is thread-safe.

    Tests script it directly (``configure``, ``expire_tokens``, ``set_throttling``,
    ``update_run_log``, ``runs``) or through the HTTP control API that
    :class:`SapJobSchedulingPlatform` maps onto the same methods. API methods raise
    :class:`JobSchedulingError` for requests the service refuses.
    """

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self._lock = threading.RLock()
        self.tokens: dict[str, Token] = {}
        self.jobs: dict[int, Job] = {}
        self.defaults = JobConfig()
        self.configs_by_id: dict[int, dict[str, Any]] = {}
        self.configs_by_name: dict[str, dict[str, Any]] = {}
        self.throttling_ms = 0.0
        self._next_id = 1
        self._armed: list[Schedule] = []
        self._unfinished: list[Run] = []
        self._seed()

    # ------------------------------------------------------------------------------ seed / reset

    def _seed(self) -> None:
        """Build the seed instance: one active job without schedules (called at start and by reset)."""
        now = self._now()
        self.jobs = {
            SEED_JOB_ID: Job(
                id=SEED_JOB_ID,
                name=SEED_JOB_NAME,
                action=SEED_JOB_ACTION,
                http_method="POST",
                active=True,
                description="Refreshes the planning model every night",
                created=now,
            )
        }
        self._next_id = SEED_JOB_ID + 1
        self.defaults = JobConfig()
        self.configs_by_id = {}
        self.configs_by_name = {}
        self.throttling_ms = 0.0
        self._armed = []
        self._unfinished = []

    def reset(self) -> None:
        """Return to the seed state. Issued tokens stay valid (a reset isolates data, not sessions)."""
        with self._lock:
            self._seed()

    def _now(self) -> float:
        return self.context.clock()

    # ------------------------------------------------------------------------------------- tokens

    @property
    def token_ttl(self) -> float:
        """Token lifetime: XSUAA's 43199 s, or the server's ``token_ttl`` when it was changed."""
        if self.context.token_ttl == SERVER_DEFAULT_TOKEN_TTL:
            return TOKEN_TTL_SECONDS
        return float(self.context.token_ttl)

    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> bool:
        """True for the seeded OAuth client's id and secret."""
        return (
            client_id == CLIENT_ID
            and client_secret is not None
            and secrets.compare_digest(client_secret, CLIENT_SECRET)
        )

    def check_lite(self, basic_value: str) -> bool:
        """True when a Basic credential (base64 ``user:password``) is the lite-plan user."""
        try:
            user, _, password = base64.b64decode(basic_value.strip(), validate=True).decode().partition(":")
        except (ValueError, binascii.Error):
            return False
        return user == LITE_USER and secrets.compare_digest(password, LITE_PASSWORD)

    def issue_token(self, issuer: str = "http://sandbox", grant: str = "client_credentials") -> Token:
        """Issue an access token (a JWT-shaped string with an unverifiable signature)."""
        now = self._now()
        jti = uuid.uuid4().hex
        expires_at = now + self.token_ttl
        claims = {
            "jti": jti,
            "ext_attr": {"enhancer": "XSUAA", "serviceinstanceid": SERVICE_INSTANCE_ID},
            "sub": CLIENT_ID,
            "scope": list(SCOPES),
            "client_id": CLIENT_ID,
            "cid": CLIENT_ID,
            "azp": CLIENT_ID,
            "grant_type": "client_credentials",
            "iat": int(now),
            "exp": int(expires_at),
            "iss": f"{issuer}/oauth/token",
            "zid": IDENTITY_ZONE_ID,
            "aud": [XSAPPNAME, "uaa", CLIENT_ID],
        }
        header = {"alg": "RS256", "jku": f"{issuer}/token_keys", "kid": "sandbox-key-1", "typ": "JWT"}
        value = ".".join(
            [_b64url(json.dumps(header, separators=(",", ":")).encode()),
             _b64url(json.dumps(claims, separators=(",", ":")).encode()),
             _b64url(secrets.token_bytes(256))]
        )  # fmt: skip
        token = Token(value=value, jti=jti, client_id=CLIENT_ID, grant=grant, expires_at=expires_at)
        with self._lock:
            self.tokens[value] = token
        return token

    def create_token(self) -> str:
        """Issue a token without an HTTP round trip (for tests that skip authentication)."""
        return self.issue_token().value

    def check_token(self, value: str) -> bool:
        """True if ``value`` is an issued, unexpired access token."""
        with self._lock:
            token = self.tokens.get(value)
            return token is not None and token.expires_at > self._now()

    def expire_tokens(self) -> int:
        """Make every issued token expired (API calls then answer 401); returns how many."""
        with self._lock:
            now = self._now()
            count = 0
            for token in self.tokens.values():
                if token.expires_at > now:
                    token.expires_at = now - 1
                    count += 1
            return count

    # ------------------------------------------------------------------------------------ control

    def configure(self, job_id: int | str | None = None, *, job_name: str | None = None, **settings: Any) -> JobConfig:
        """Set how runs behave: for one job (by id or name) or the defaults of all jobs (neither).

        Keys: ``outcome`` (success | error | request_error | async | async_timeout),
        ``scheduled_seconds``, ``running_seconds``, ``async_timeout_seconds``. A job's effective
        configuration is the defaults, then its name's overrides, then its id's overrides; the job
        need not exist yet. Returns the effective configuration.
        """
        if job_id is not None and job_name is not None:
            raise ValueError("give job_id or job_name, not both")
        known = {f.name for f in fields(JobConfig)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        types = {"outcome": str, "scheduled_seconds": float, "running_seconds": float, "async_timeout_seconds": float}
        try:
            clean = {k: types[k](v) for k, v in settings.items() if v is not None}
            key = None if job_id is None else int(job_id)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid configuration value: {exc}") from exc
        with self._lock:
            if key is None and job_name is None:
                candidate = replace(self.defaults, **clean)
                candidate.validate()
                self.defaults = candidate
                return replace(candidate)
            table: dict[Any, dict[str, Any]] = self.configs_by_id if key is not None else self.configs_by_name
            slot = key if key is not None else str(job_name)
            merged = {**table.get(slot, {}), **clean}
            if key is not None:
                job = self.jobs.get(key)
                base = {**self.configs_by_name.get(job.name, {})} if job else {}
            else:
                base = {}
            candidate = replace(self.defaults, **{**base, **merged})
            candidate.validate()
            table[slot] = merged
            return candidate

    def config_for(self, job_id: int) -> JobConfig:
        """Effective configuration of one job (defaults, then name overrides, then id overrides)."""
        with self._lock:
            job = self.jobs.get(job_id)
            by_name = self.configs_by_name.get(job.name, {}) if job else {}
            return replace(self.defaults, **{**by_name, **self.configs_by_id.get(job_id, {})})

    def set_throttling(self, milliseconds: float) -> None:
        """Delay every successful API answer by ``milliseconds`` (scaled) and report it in a
        ``throttling`` header, as the service does near its rate limits; 0 turns it off."""
        if milliseconds < 0:
            raise ValueError("throttling must not be negative")
        with self._lock:
            self.throttling_ms = float(milliseconds)

    def runs(self) -> list[dict[str, Any]]:
        """Every run of every job with its state (for debugging and the control API)."""
        with self._lock:
            now = self._advance()
            return [
                {"jobId": job.id, "scheduleId": schedule.id, **_run_log_json(run, run.view(now))}
                for job in self.jobs.values()
                for schedule in job.schedules.values()
                for run in schedule.runs.values()
            ]

    # --------------------------------------------------------------------------------------- jobs

    def _job(self, job_id: int | str) -> Job:
        key = int(job_id) if isinstance(job_id, int) or str(job_id).isdigit() else None
        job = self.jobs.get(key) if key is not None else None
        if job is None:
            raise JobSchedulingError(404, f"Invalid job ID: job {job_id} does not exist")
        return job

    def _by_name(self, name: str) -> Job | None:
        return next((j for j in self.jobs.values() if j.name == name), None)

    def _clean_job(self, body: Any, context: str, *, partial_update: bool) -> dict[str, Any]:
        """Validate a job body; returns the recognised fields (``schedules`` left raw)."""
        if not isinstance(body, dict):
            raise _bad(f"{context}: the request body must be a JSON object")
        clean: dict[str, Any] = {}
        if "name" in body or not partial_update:
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise _bad(f"{context}: 'name' is required")
            if name.strip().isdigit():
                raise _bad(f"{context}: the job name must not consist only of numbers")
            if _BAD_NAME.search(name):
                raise _bad(f"{context}: the job name must not contain special characters")
            clean["name"] = name
        if "action" in body or not partial_update:
            action = body.get("action")
            if not isinstance(action, str) or not action:
                raise _bad(f"{context}: 'action' is required")
            parts = urlsplit(action)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise _bad(f"{context}: 'action' must be a fully qualified http(s) URL")
            clean["action"] = action
        if "httpMethod" in body or not partial_update:
            method = body.get("httpMethod")
            if not isinstance(method, str) or not method:
                raise _bad(f"{context}: 'httpMethod' is required")
            if method.upper() not in HTTP_METHODS:
                raise _bad(f"{context}: 'httpMethod' must be one of {', '.join(HTTP_METHODS)}")
            clean["httpMethod"] = method.upper()
        if "active" in body:
            clean["active"] = _parse_bool(body["active"], "active", context)
        if "description" in body:
            description = body["description"]
            if description is not None and not isinstance(description, str):
                raise _bad(f"{context}: 'description' must be a string")
            clean["description"] = description or ""
        for key in ("startTime", "endTime"):
            if key in body:
                clean[key] = body[key]
        if "user" in body:
            clean["user"] = None if body["user"] is None else str(body["user"])
        if "ansConfig" in body:
            ans = body["ansConfig"]
            if not isinstance(ans, dict) or not all(isinstance(v, bool) for v in ans.values()):
                raise _bad(f"{context}: 'ansConfig' must be an object with boolean onSuccess and onError")
            clean["ansConfig"] = dict(ans)
        if "calmConfig" in body:
            calm = body["calmConfig"]
            if not isinstance(calm, dict):
                raise _bad(f"{context}: 'calmConfig' must be an object")
            if not calm:
                raise _bad(f"{context}: 'calmConfig' object cannot be empty")
            clean["calmConfig"] = dict(calm)
        return clean

    @staticmethod
    def _apply(job: Job, clean: dict[str, Any]) -> None:
        names = {
            "name": "name",
            "action": "action",
            "httpMethod": "http_method",
            "active": "active",
            "description": "description",
            "startTime": "start_time",
            "endTime": "end_time",
            "user": "user",
            "ansConfig": "ans_config",
            "calmConfig": "calm_config",
        }
        for key, attr in names.items():
            if key in clean:
                setattr(job, attr, clean[key])

    def create_job(self, body: Any) -> dict[str, Any]:
        """``POST /scheduler/jobs``: create a job and its schedules; returns the created job."""
        context = "Error while creating job"
        clean = self._clean_job(body, context, partial_update=False)
        raw_schedules = body.get("schedules") or []
        if not isinstance(raw_schedules, list):
            raise _bad(f"{context}: 'schedules' must be an array")
        with self._lock:
            now = self._advance()
            prepared = [self._clean_schedule(s, f"{context}: schedules[{i}]", now) for i, s in enumerate(raw_schedules)]
            if self._by_name(clean["name"]) is not None:
                raise _bad(f"{context}: a job with the name '{clean['name']}' already exists")
            job = Job(
                id=self._next_id,
                name=clean["name"],
                action=clean["action"],
                http_method=clean["httpMethod"],
                active=False,
                description="",
                created=now,
            )
            self._apply(job, clean)
            self._next_id += 1
            self.jobs[job.id] = job
            for spec in prepared:
                self._add_schedule(job, spec, now)
            self._advance()
            out = job.to_json()
            out["schedules"] = [s.to_json() for s in job.schedules.values()]
            return out

    def list_jobs(
        self,
        filter_groups: list[list[tuple[str, str, str]]] | None = None,
        job_type: str | None = None,
        sort_by: str | None = None,
        descending: bool = False,
    ) -> list[dict[str, Any]]:
        """Every job as a list item, filtered and sorted (by ``_id`` unless ``sort_by``)."""
        if job_type is not None and job_type not in JOB_TYPES:
            raise _bad(f"Invalid jobType '{job_type}': use one of {', '.join(JOB_TYPES)}")
        with self._lock:
            self._advance()
            items = [j.to_list_item() for j in sorted(self.jobs.values(), key=lambda j: j.id)]
        if job_type is not None:
            items = [i for i in items if i["jobType"] == job_type]
        if filter_groups:
            items = [i for i in items if any(all(_term(i, *t) for t in group) for group in filter_groups)]
        if sort_by is not None:
            if sort_by not in SORT_KEYS:
                raise _bad(f"Invalid sort_by '{sort_by}': use one of {', '.join(SORT_KEYS)}")
            items.sort(key=lambda i: _sort_key(i.get(sort_by)), reverse=descending)
        elif descending:
            items.reverse()
        return items

    def get_job(self, job_id: int | str, display_schedules: bool = False) -> dict[str, Any]:
        """``GET /scheduler/jobs/{jobId}``: the job, with its schedules if asked."""
        with self._lock:
            self._advance()
            job = self._job(job_id)
            out = job.to_json()
            if display_schedules:
                out["schedules"] = [s.to_json() for s in job.schedules.values()]
            return out

    def find_job(
        self, name: str | None = None, job_id: str | None = None, display_schedules: bool = False
    ) -> dict[str, Any]:
        """``GET /scheduler/jobs?name=...`` / ``?jobId=...``: one job (both given: they must agree)."""
        with self._lock:
            self._advance()
            job = self._by_name(name) if name is not None else None
            if name is not None and job is None:
                raise JobSchedulingError(404, f"Job with name '{name}' does not exist")
            if job_id is not None:
                by_id = self._job(job_id)
                if job is not None and job is not by_id:
                    raise JobSchedulingError(404, f"Job {job_id} is not named '{name}'")
                job = by_id
            assert job is not None
            return self.get_job(job.id, display_schedules)

    def update_job(self, job_id: int | str, body: Any) -> None:
        """``PUT /scheduler/jobs/{jobId}``: change the given fields (others keep their values)."""
        context = "Error while updating job"
        clean = self._clean_job(body, context, partial_update=True)
        if not clean:
            raise _bad(f"{context}: give at least one job attribute to update")
        with self._lock:
            now = self._advance()
            job = self._job(job_id)
            if "name" in clean:
                other = self._by_name(clean["name"])
                if other is not None and other is not job:
                    raise _bad(f"{context}: a job with the name '{clean['name']}' already exists")
            self._apply(job, clean)
            for schedule in job.schedules.values():
                self._arm(schedule, job, now)
            self._advance()

    def put_job_by_name(self, name: str, body: Any) -> tuple[bool, dict[str, Any]]:
        """``PUT /scheduler/jobs/{name}``: update the job with that name, or create it.

        Returns ``(created, job)``. The name in the body, if any, must match the one in the URI.
        """
        if isinstance(body, dict) and body.get("name") not in (None, name):
            raise _bad("Error while configuring job: the job name in the request URI must match the one in the body")
        with self._lock:
            job = self._by_name(name)
            if job is not None:
                self.update_job(job.id, body)
                return False, self.get_job(job.id)
            if not isinstance(body, dict):
                raise _bad("Error while creating job: the request body must be a JSON object")
            return True, self.create_job({"httpMethod": "POST", **body, "name": name})

    def delete_job(self, job_id: int | str) -> None:
        """``DELETE /scheduler/jobs/{jobId}``: the job, its schedules and their run logs."""
        with self._lock:
            self._advance()
            job = self._job(job_id)
            for schedule in list(job.schedules.values()):
                self._drop_schedule(job, schedule)
            del self.jobs[job.id]

    # ---------------------------------------------------------------------------------- schedules

    def _clean_schedule(self, body: Any, context: str, now: float, current: Schedule | None = None) -> dict[str, Any]:
        """Validate a schedule body (a new one, or changes to ``current``)."""
        if not isinstance(body, dict):
            raise _bad(f"{context}: a schedule must be a JSON object")
        modes = [m for m in SCHEDULE_MODES if body.get(m) not in (None, "")]
        if len(modes) > 1:
            raise _bad(f"{context}: specify at most one of {', '.join(SCHEDULE_MODES)}; got {', '.join(modes)}")
        if current is None and not modes:
            raise _bad(f"{context}: one of {', '.join(SCHEDULE_MODES)} is required")
        if current is not None and modes and modes[0] != current.mode:
            raise _bad(f"{context}: the scheduling mode cannot be changed from '{current.mode}' to '{modes[0]}'")
        clean: dict[str, Any] = {}
        if modes:
            mode, value = modes[0], body[modes[0]]
            if mode == "time":
                try:
                    clean["time_at"] = parse_schedule_time(value, now, self.context.time_scale)
                except ValueError as exc:
                    raise _bad(
                        f"{context}: invalid time {value!r} ({exc}); the sandbox understands 'now', "
                        "'in 5 minutes', '5 minutes from now', ISO-8601 and RFC 2822"
                    ) from exc
                value = value.get("date") if isinstance(value, dict) else value
            elif not isinstance(value, str):
                raise _bad(f"{context}: '{mode}' must be a string")
            elif mode == "cron" and len(value.split()) != 7:
                raise _bad(
                    f"{context}: invalid cron '{value}': expected 7 fields "
                    "(Year Month Day DayOfWeek Hour Minute Second)"
                )
            clean["mode"], clean["value"] = mode, str(value)
        if "active" in body:
            clean["active"] = _parse_bool(body["active"], "active", context)
        elif current is None:
            raise _bad(f"{context}: 'active' is required")
        if "description" in body:
            if body["description"] is not None and not isinstance(body["description"], str):
                raise _bad(f"{context}: 'description' must be a string")
            clean["description"] = body["description"] or ""
        if "data" in body:
            clean["data"] = _data_string(body["data"], context)
        for key, attr in (("startTime", "start_time"), ("endTime", "end_time")):
            if key in body:
                clean[attr] = body[key]
        if current is not None and not clean:
            raise _bad(f"{context}: give at least one schedule attribute to update")
        return clean

    def _add_schedule(self, job: Job, spec: dict[str, Any], now: float) -> Schedule:
        schedule = Schedule(
            id=str(uuid.uuid4()),
            job_id=job.id,
            mode=spec["mode"],
            value=spec["value"],
            active=spec["active"],
            description=spec.get("description", ""),
            data=spec.get("data"),
            start_time=spec.get("start_time"),
            end_time=spec.get("end_time"),
            created=now,
            time_at=spec.get("time_at"),
        )
        job.schedules[schedule.id] = schedule
        self._arm(schedule, job, now)
        return schedule

    def _arm(self, schedule: Schedule, job: Job, now: float) -> None:
        """Arm an unfired one-time schedule of an active job (its run is due at its time), or disarm it."""
        eligible = schedule.one_time and not schedule.fired and schedule.active and job.active
        if eligible and schedule.due_at is None:
            assert schedule.time_at is not None
            schedule.due_at = max(schedule.time_at, now)
            self._armed.append(schedule)
        elif not eligible and schedule.due_at is not None:
            schedule.due_at = None
            self._armed.remove(schedule)

    def _drop_schedule(self, job: Job, schedule: Schedule) -> None:
        if schedule in self._armed:
            self._armed.remove(schedule)
        for run in schedule.runs.values():
            if run in self._unfinished:
                self._unfinished.remove(run)
        del job.schedules[schedule.id]

    def _schedule(self, job_id: int | str, schedule_id: str) -> tuple[Job, Schedule]:
        job = self._job(job_id)
        schedule = job.schedules.get(schedule_id)
        if schedule is None:
            message = f"Invalid schedule ID: schedule {schedule_id} does not exist for job {job.id}"
            raise JobSchedulingError(404, message)
        return job, schedule

    def list_schedules(self, job_id: int | str) -> list[dict[str, Any]]:
        """``GET /scheduler/jobs/{jobId}/schedules``: every schedule of the job, oldest first."""
        with self._lock:
            self._advance()
            return [s.to_json() for s in self._job(job_id).schedules.values()]

    def create_schedule(self, job_id: int | str, body: Any) -> dict[str, Any]:
        """``POST /scheduler/jobs/{jobId}/schedules``; a ``time`` schedule's run is created when due."""
        with self._lock:
            now = self._advance()
            job = self._job(job_id)
            spec = self._clean_schedule(body, "Error while creating schedule", now)
            schedule = self._add_schedule(job, spec, now)
            self._advance()
            return schedule.to_json(with_job_id=True)

    def get_schedule(self, job_id: int | str, schedule_id: str, display_logs: bool = False) -> dict[str, Any]:
        """``GET .../schedules/{scheduleId}``; ``display_logs`` embeds up to 200 run logs."""
        with self._lock:
            now = self._advance()
            _, schedule = self._schedule(job_id, schedule_id)
            out = schedule.to_json()
            if display_logs:
                runs = list(schedule.runs.values())[:MAX_RUN_LOGS]
                out["logs"] = [_display_log_json(r, r.view(now)) for r in runs]
            return out

    def update_schedule(self, job_id: int | str, schedule_id: str, body: Any) -> dict[str, Any]:
        """``PUT .../schedules/{scheduleId}``: change values; a new ``time`` re-schedules the run."""
        with self._lock:
            now = self._advance()
            job, schedule = self._schedule(job_id, schedule_id)
            spec = self._clean_schedule(body, "Error while updating schedule", now, current=schedule)
            if "time_at" in spec:
                schedule.time_at = spec["time_at"]
                schedule.fired = False
                if schedule.due_at is not None:
                    schedule.due_at = None
                    self._armed.remove(schedule)
            for key in ("value", "active", "description", "data", "start_time", "end_time"):
                if key in spec:
                    setattr(schedule, key, spec[key])
            self._arm(schedule, job, now)
            self._advance()
            return schedule.to_json(with_job_id=True)

    def delete_schedule(self, job_id: int | str, schedule_id: str) -> None:
        """``DELETE .../schedules/{scheduleId}``: the schedule and its run logs."""
        with self._lock:
            self._advance()
            job, schedule = self._schedule(job_id, schedule_id)
            self._drop_schedule(job, schedule)

    def delete_all_schedules(self, job_id: int | str) -> None:
        """``DELETE /scheduler/jobs/{jobId}/schedules``."""
        with self._lock:
            self._advance()
            job = self._job(job_id)
            for schedule in list(job.schedules.values()):
                self._drop_schedule(job, schedule)

    def set_activation(self, job_id: int | str, active: bool) -> None:
        """``POST .../schedules/activationStatus``: activate or deactivate every schedule of the job."""
        with self._lock:
            now = self._advance()
            job = self._job(job_id)
            for schedule in job.schedules.values():
                schedule.active = active
                self._arm(schedule, job, now)
            self._advance()

    # --------------------------------------------------------------------------------------- runs

    def _run(self, job_id: int | str, schedule_id: str, run_id: str) -> Run:
        _, schedule = self._schedule(job_id, schedule_id)
        run = schedule.runs.get(run_id)
        if run is None:
            raise JobSchedulingError(404, f"Invalid run ID: run {run_id} does not exist for schedule {schedule_id}")
        return run

    def list_runs(self, job_id: int | str, schedule_id: str) -> list[dict[str, Any]]:
        """Every run log of a schedule, oldest first, as the run log API shows them."""
        with self._lock:
            now = self._advance()
            _, schedule = self._schedule(job_id, schedule_id)
            return [_run_log_json(r, r.view(now)) for r in schedule.runs.values()]

    def get_run(self, job_id: int | str, schedule_id: str, run_id: str) -> dict[str, Any]:
        """``GET .../runs/{runId}``."""
        with self._lock:
            now = self._advance()
            run = self._run(job_id, schedule_id, run_id)
            return _run_log_json(run, run.view(now))

    def update_run_log(
        self, job_id: int | str, schedule_id: str, run_id: str, success: bool, message: str = ""
    ) -> None:
        """``PUT .../runs/{runId}`` (Update Job Run Log): complete a RUNNING run, as an async app does.

        A run that has not been triggered yet, or has already completed, answers 400.
        """
        with self._lock:
            now = self._advance()
            run = self._run(job_id, schedule_id, run_id)
            view = run.view(now)
            if view.status != RUNNING:
                raise _bad(
                    f"Error while updating run log: run {run_id} is {view.status}/{view.state}; "
                    "only a RUNNING run can be updated"
                )
            run.callback_at = now
            run.callback_success = bool(success)
            run.callback_message = message
            if run.asynchronous and now < run.answered_at:
                run.answered_at = now
            self._advance()

    # ------------------------------------------------------------------------ lazy state machine

    def _advance(self) -> float:
        """Create the runs of due schedules, then finalise completed runs; returns ``now``. Under the lock."""
        now = self._now()
        if self._armed:
            due = sorted((s for s in self._armed if s.due_at is not None and s.due_at <= now), key=_due_key)
            for schedule in due:
                self._armed.remove(schedule)
                self._fire(schedule)
        if self._unfinished:
            for run in list(self._unfinished):
                done = run.completed_at()
                if done is not None and done <= now:
                    self._unfinished.remove(run)
                    self._finalize(run)
        return now

    def _fire(self, schedule: Schedule) -> None:
        """Create the (single) run of a due one-time schedule."""
        job = self.jobs[schedule.job_id]
        config = self.config_for(job.id)
        assert schedule.due_at is not None
        scheduled_at = schedule.due_at
        triggered_at = scheduled_at + self.context.scaled(config.scheduled_seconds)
        answered_at = triggered_at + self.context.scaled(config.running_seconds)
        timeout_at = None
        if config.outcome == "async_timeout":
            timeout_at = answered_at + self.context.scaled(config.async_timeout_seconds)
        run = Run(
            id=str(uuid.uuid4()),
            job_id=job.id,
            schedule_id=schedule.id,
            scheduled_at=scheduled_at,
            triggered_at=triggered_at,
            answered_at=answered_at,
            timeout_at=timeout_at,
            config=config,
            request_line=f"{job.http_method} {urlsplit(job.action).path or '/'}",
        )
        schedule.runs[run.id] = run
        schedule.fired = True
        schedule.due_at = None
        self._unfinished.append(run)
        self.context.stats.record_task_started(f"jss:{job.id}")

    def _finalize(self, run: Run) -> None:
        """A run completed: its one-time schedule is deactivated (DEACTIVATION_ON_COMPLETION)."""
        job = self.jobs.get(run.job_id)
        schedule = job.schedules.get(run.schedule_id) if job else None
        if schedule is not None and schedule.one_time and schedule.fired and schedule.due_at is None:
            schedule.active = False


def _due_key(schedule: Schedule) -> float:
    return schedule.due_at if schedule.due_at is not None else 0.0


def _term(item: dict[str, Any], op: str, prop: str, value: str) -> bool:
    actual = item.get(prop)
    if actual is None:
        return False
    return value in str(actual) if op == "contains" else str(actual) == value


def _sort_key(value: Any) -> tuple[int, Any]:
    """Sort numbers numerically and everything else as text (None last)."""
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value).lower())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -------------------------------------------------------------------------------- HTTP rendering


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
        if form.get("client_id") != CLIENT_ID:
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


__all__ = [
    "API_PREFIX",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "LITE_PASSWORD",
    "LITE_USER",
    "SEED_JOB_ID",
    "SEED_JOB_NAME",
    "UAA_CERT_PREFIX",
    "UAA_PREFIX",
    "JobConfig",
    "JobSchedulingBackend",
    "JobSchedulingError",
    "SapJobSchedulingPlatform",
]
