"""SAP Job Scheduling sandbox: the emulated service instance (tokens, jobs, schedules, the run state
machine). Plain Python, no HTTP; :mod:`.routes` renders it.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import uuid
from dataclasses import fields, replace
from typing import Any
from urllib.parse import urlsplit

from ..platform import SandboxContext
from .models import (
    _BAD_NAME,
    CLIENT_ID,
    CLIENT_SECRET,
    HTTP_METHODS,
    IDENTITY_ZONE_ID,
    JOB_TYPES,
    LITE_PASSWORD,
    LITE_USER,
    MAX_RUN_LOGS,
    RUNNING,
    SCHEDULE_MODES,
    SCOPES,
    SEED_JOB_ACTION,
    SEED_JOB_ID,
    SEED_JOB_NAME,
    SERVER_DEFAULT_TOKEN_TTL,
    SERVICE_INSTANCE_ID,
    SORT_KEYS,
    TOKEN_TTL_SECONDS,
    XSAPPNAME,
    Job,
    JobConfig,
    JobSchedulingError,
    Run,
    Schedule,
    Token,
    _bad,
    _data_string,
    _display_log_json,
    _parse_bool,
    _run_log_json,
    parse_schedule_time,
)


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
        #: Answer the schedule list as a bare JSON array (no ``total``/``results`` envelope): the reference
        #: gives no example body for it, so the hook must read both.
        self.bare_schedule_list = False
        self._next_id = 1
        self._armed: list[Schedule] = []
        self._unfinished: list[Run] = []
        #: No unfinished run completes before this (a lower bound): requests skip the scan until then, so
        #: thousands of long runs cost one comparison per request, not one look at every run.
        self._unfinished_due = float("inf")
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
        self._unfinished_due = float("inf")

    def reset(self) -> None:
        """Return to the seed state. Issued tokens stay valid (a reset isolates data, not sessions)."""
        with self._lock:
            self.bare_schedule_list = False
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
        accepted = self.context.credentials
        return (
            client_id == accepted.get("sap_job_scheduling", "client_id", CLIENT_ID)
            and client_secret is not None
            and secrets.compare_digest(
                client_secret.encode(), accepted.get("sap_job_scheduling", "client_secret", CLIENT_SECRET).encode()
            )
        )

    def check_lite(self, basic_value: str) -> bool:
        """True when a Basic credential (base64 ``user:password``) is the lite-plan user."""
        try:
            user, _, password = base64.b64decode(basic_value.strip(), validate=True).decode().partition(":")
        except (ValueError, binascii.Error):
            return False
        accepted = self.context.credentials
        return user == accepted.get("sap_job_scheduling", "lite_user", LITE_USER) and secrets.compare_digest(
            password.encode(), accepted.get("sap_job_scheduling", "lite_password", LITE_PASSWORD).encode()
        )

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
            self._unfinished_due = min(self._unfinished_due, now)
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
        if self._unfinished and now >= self._unfinished_due:
            next_due = float("inf")
            for run in list(self._unfinished):
                done = run.completed_at()
                if done is not None and done <= now:
                    self._unfinished.remove(run)
                    self._finalize(run)
                elif done is not None:
                    next_due = min(next_due, done)
            self._unfinished_due = next_due
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
        done = run.completed_at()
        if done is not None:
            self._unfinished_due = min(self._unfinished_due, done)
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
