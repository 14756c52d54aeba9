"""SAP BTP Job Scheduling Service: service-key connection, XSUAA auth and the REST API.

Only what is specific to the service lives here: how a service key is read, its token endpoint
(client secret or x509), its endpoints, paging envelope, run states, schedule formats and the
validation it applies. Retries (including 429 ``retry-after`` and 503 ``throttling``), token
caching and error mapping come from :mod:`airflow_provider_sapplan.core`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from airflow_provider_sapplan.connections import form_for
from airflow_provider_sapplan.core.auth import StaticHeaderAuth, secret_digest
from airflow_provider_sapplan.core.errors import URL_FIELDS_HINT_KEY
from airflow_provider_sapplan.core.hook import PlatformHook, extra_field
from airflow_provider_sapplan.core.http import ClientConfig
from airflow_provider_sapplan.core.oauth_grants import ServiceKeyGrant
from airflow_provider_sapplan.core.tls import read_pem
from airflow_provider_sapplan.core.validation import parse_timeout_value
from airflow_provider_sapplan.exceptions import (
    ConnectionConfigError,
    InvalidRequestError,
    NameResolutionError,
    NotFoundError,
    SapplanError,
)

PLATFORM = "SAP Job Scheduling"
MAX_BODY_BYTES = 100 * 1024
MAX_PAGE_SIZE = 100
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})
SCHEDULE_KINDS = ("cron", "time", "repeatInterval", "repeatAt")

STATUS_HINTS: dict[int, str] = {
    400: "The service rejected the request; its message above names the field to fix.",
    403: "The OAuth client lacks the Job Scheduling scopes; recreate the service key for this instance.",
    404: "Check the job id or name, the schedule id and the run id (run logs are purged after 15 days).",
    413: "The request body is over the service's 100 KB limit; send less data with the job.",
}

_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M")


def parse_timestamp(value: str | None) -> datetime | None:
    """Parse either timestamp form the service returns (``T`` or space separated), as UTC."""
    if not value:
        return None
    text = str(value).strip().rstrip("Z")
    text = re.sub(r"([+-]\d{2}):?(\d{2})$", "", text) if re.search(r"[+-]\d{2}:?\d{2}$", text[10:]) else text
    for fmt in _TIMESTAMP_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def validate_schedule(schedule: Mapping[str, Any], where: str = "schedule") -> None:
    """Check a schedule before sending it: exactly one of cron/time/repeatInterval/repeatAt, SAP cron order."""
    kinds = [kind for kind in SCHEDULE_KINDS if schedule.get(kind) not in (None, "")]
    if len(kinds) != 1:
        raise InvalidRequestError(
            f"{where} needs exactly one of {', '.join(SCHEDULE_KINDS)}; it has "
            f"{', '.join(kinds) if kinds else 'none'}.",
            platform=PLATFORM,
        )
    if kinds == ["cron"]:
        validate_cron(schedule["cron"], where=where)


CRON_ORDER = "Year Month Day DayOfWeek Hour Minute Second"
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, negative values allowed) in SAP's order.
_CRON_FIELDS: tuple[tuple[str, int, int, bool], ...] = (
    ("Year", 1970, 2099, False),
    ("Month", 1, 12, False),
    ("Day", 1, 31, True),
    ("DayOfWeek", 0, 7, False),
    ("Hour", 0, 23, False),
    ("Minute", 0, 59, False),
    ("Second", 0, 59, False),
)
_CRON_ITEM = re.compile(r"^(?:\*|(-?\d+)(?:[:-](-?\d+))?)(?:/(\d+))?$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def validate_cron(expression: Any, where: str = "schedule") -> None:
    """Check a cron expression against SAP's 7-field order and each field's range.

    SAP reads ``Year Month Day DayOfWeek Hour Minute Second``; each field is ``*``, a value, a range
    ``a:b``, a step ``*/n`` or ``a:b/n``, or a comma list of those; DayOfWeek also takes mon..sun and
    ``n.sun`` (the n-th Sunday), Day also ``-1`` (the last day). A Quartz expression (seconds first) is
    recognised and the SAP spelling of it suggested.
    """
    text = str(expression).strip()
    fields = text.split()
    example = "(e.g. '* * * * 6 0 0' for 06:00 every day)"
    if len(fields) != 7:
        message = (
            f"{where}: cron {text!r} has {len(fields)} fields; SAP's cron has 7, in the order {CRON_ORDER} {example}."
        )
        other = None
        if len(fields) == 5:  # Unix: Minute Hour Day Month DayOfWeek
            minute, hour, day, month, weekday = fields
            other = ("Unix cron (Minute Hour Day Month DayOfWeek)", ["0", minute, hour, day, month, weekday, "*"])
        elif len(fields) == 6:  # Quartz without the year
            other = ("Quartz order without a year (Second Minute Hour Day Month DayOfWeek)", [*fields, "*"])
        if other is not None:
            quartz = _as_sap_order_if_quartz(other[1])
            if quartz:
                message += f" It looks like {other[0]}; in SAP's order write {quartz!r}."
        raise InvalidRequestError(message, platform=PLATFORM)
    problems = [
        problem
        for value, (name, low, high, negative) in zip(fields, _CRON_FIELDS, strict=True)
        if (problem := _cron_field_problem(value, name, low, high, negative))
    ]
    if not problems:
        return
    quartz = _as_sap_order_if_quartz(fields)
    if quartz:
        message = (
            f"{where}: cron {text!r} looks like Quartz order (Second Minute Hour Day Month DayOfWeek Year), but SAP "
            f"reads {CRON_ORDER}: write {quartz!r}."
        )
    else:
        message = (
            f"{where}: cron {text!r} does not fit SAP's order {CRON_ORDER}: {'; '.join(problems)}. "
            f"{example[1:-1].capitalize()}."
        )
    raise InvalidRequestError(message, platform=PLATFORM)


def _cron_field_problem(value: str, name: str, low: int, high: int, negative: bool) -> str | None:
    for item in value.lower().split(","):
        if name == "DayOfWeek":
            item = re.sub(r"^-?\d+\.(?=[a-z]{3}$)", "", item)  # "2.sun": the second Sunday
            item = re.sub(r"\b(sun|mon|tue|wed|thu|fri|sat)\b", lambda m: str(_WEEKDAYS.index(m.group(1))), item)
        if name == "Month":
            item = re.sub(
                r"\b([a-z]{3})\b",
                lambda m: str(_MONTHS.index(m.group(1)) + 1) if m.group(1) in _MONTHS else m.group(1),
                item,
            )
        match = _CRON_ITEM.match(item)
        if not match:
            return f"{name} {value!r} is not *, a number, a range a:b or a step */n"
        for number in (match.group(1), match.group(2)):
            if number is None:
                continue
            amount = int(number)
            if negative and -high <= amount <= -1:
                continue
            if not low <= amount <= high:
                return f"{name} {amount} is outside {low}-{high}"
        if match.group(3) is not None and int(match.group(3)) == 0:
            return f"{name} step /0 is not allowed"
    return None


def _as_sap_order_if_quartz(fields: list[str]) -> str | None:
    """The SAP spelling of a 7-field Quartz expression (seconds first), or None when it is not one."""
    second, minute, hour, day, month, weekday, year = fields
    day = "*" if day == "?" else day
    weekday = "*" if weekday == "?" else weekday
    checks = (
        (second, "Second", 0, 59, False),
        (minute, "Minute", 0, 59, False),
        (hour, "Hour", 0, 23, False),
        (day, "Day", 1, 31, True),
        (month, "Month", 1, 12, False),
        (weekday, "DayOfWeek", 0, 7, False),
        (year, "Year", 1970, 2099, False),
    )
    if any(_cron_field_problem(value, name, low, high, neg) for value, name, low, high, neg in checks):
        return None
    return " ".join((year, month, day, weekday, hour, minute, second))


def validate_job(job: Mapping[str, Any]) -> None:
    """Check a job definition before sending it; errors name the field to fix."""
    if not isinstance(job, Mapping):
        raise InvalidRequestError("The job definition must be a dict.", platform=PLATFORM)
    missing = [key for key in ("name", "action", "httpMethod") if not job.get(key)]
    if missing:
        raise InvalidRequestError(f"The job definition lacks {', '.join(missing)}.", platform=PLATFORM)
    if str(job["httpMethod"]).upper() not in HTTP_METHODS:
        raise InvalidRequestError(
            f"httpMethod {job['httpMethod']!r} is not one of {', '.join(sorted(HTTP_METHODS))}.", platform=PLATFORM
        )
    if not str(job["action"]).startswith(("http://", "https://")):
        raise InvalidRequestError(f"action {job['action']!r} must be the endpoint's http(s) URL.", platform=PLATFORM)
    for index, schedule in enumerate(job.get("schedules") or []):
        validate_schedule(schedule, where=f"schedules[{index}]")
    check_body_size(job)


def check_body_size(body: Any) -> None:
    size = len(json.dumps(body, default=str).encode())
    if size > MAX_BODY_BYTES:
        raise InvalidRequestError(
            f"The request body is {size} bytes; the service accepts at most {MAX_BODY_BYTES} (100 KB).",
            platform=PLATFORM,
            status_code=413,
        )


@dataclass(frozen=True)
class ServiceKey:
    """The parts of a Job Scheduling service key (or binding) that the provider uses."""

    url: str
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    certificate: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    dashboard_url: str | None = None

    @property
    def kind(self) -> str:
        if self.username is not None:
            return "basic"
        return "x509" if self.certificate else "client_secret"


def parse_service_key(raw: Any, conn_id: str, *, connection: str | None = None) -> ServiceKey:
    """Read a pasted service key (dict or JSON text); a missing field is named in the error.

    Accepts the key itself, or the ``{"credentials": {...}}`` wrapper that ``cf service-key`` prints.
    """
    where = connection[:1].upper() + connection[1:] if connection else f"Connection {conn_id!r}"
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as err:
            raise ConnectionConfigError(
                f"{where}: service_key is not valid JSON ({err}); paste the whole service key."
            ) from None
    if not isinstance(raw, Mapping):
        raise ConnectionConfigError(f"{where}: service_key must be a JSON object.")
    if "url" not in raw and isinstance(raw.get("credentials"), Mapping):
        raw = raw["credentials"]  # `cf service-key` output wraps the key in "credentials"

    def need(container: Mapping[str, Any], name: str, path: str) -> Any:
        value = container.get(name)
        if value in (None, ""):
            raise ConnectionConfigError(
                f"{where}: the service key has no '{path}'. Paste the complete service key of "
                "the Job Scheduling instance (cf service-key <instance> <key>)."
            )
        return value

    url = str(need(raw, "url", "url")).rstrip("/")
    uaa = raw.get("uaa")
    if not isinstance(uaa, Mapping):
        if raw.get("user") and raw.get("password"):  # lite plan binding
            return ServiceKey(url=url, username=str(raw["user"]), password=str(raw["password"]))
        raise ConnectionConfigError(
            f"{where}: the service key has no 'uaa' section (nor the lite plan's 'user' and 'password')."
        )
    client_id = str(need(uaa, "clientid", "uaa.clientid"))
    dashboard = raw.get("dashboard_url") or None
    if uaa.get("certificate") or uaa.get("key"):
        label = connection or f"connection {conn_id!r}"
        return ServiceKey(
            url=url,
            token_url=str(need(uaa, "certurl", "uaa.certurl")).rstrip("/") + "/oauth/token",
            client_id=client_id,
            certificate=read_pem(
                need(uaa, "certificate", "uaa.certificate"),
                "service key 'uaa.certificate'",
                "certificate",
                connection=label,
            ),
            key=read_pem(need(uaa, "key", "uaa.key"), "service key 'uaa.key'", "private key", connection=label),
            dashboard_url=dashboard,
        )
    return ServiceKey(
        url=url,
        token_url=str(need(uaa, "url", "uaa.url")).rstrip("/") + "/oauth/token",
        client_id=client_id,
        client_secret=str(need(uaa, "clientsecret", "uaa.clientsecret")),
        dashboard_url=dashboard,
    )


class XsuaaClientCredentials(ServiceKeyGrant):
    """OAuth client credentials against XSUAA: client secret, or x509 (mutual TLS against ``certurl``)."""

    platform = PLATFORM
    missing_token_hint = "check the service key's uaa section."

    def rejection_hint(self) -> str:
        if self.key.kind == "x509":
            return (
                "Check the service key's uaa.certificate and uaa.key (they must come from the same, unexpired "
                "x509 service key), uaa.clientid and uaa.certurl; recreate the service key if it was rotated."
            )
        return (
            "Check the service key's uaa.clientid, uaa.clientsecret and uaa.url; recreate the service key if "
            "the secret was rotated or the binding deleted."
        )


class SapJobSchedulingHook(PlatformHook):
    """Talks to one SAP BTP Job Scheduling Service instance.

    :param sap_job_scheduling_conn_id: the Airflow connection (type ``sap_job_scheduling``) whose
        ``service_key`` extra holds the instance's service key, or whose host/login/password hold
        the REST URL and lite-plan basic credentials.
    """

    conn_name_attr = "sap_job_scheduling_conn_id"
    default_conn_name = "sap_job_scheduling_default"
    conn_type = "sap_job_scheduling"
    hook_name = "SAP BTP Job Scheduling"
    url_fields = "the service key's 'url' (API) and 'uaa.url' (token)"

    def __init__(self, sap_job_scheduling_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=sap_job_scheduling_conn_id, **kwargs)
        self.sap_job_scheduling_conn_id = sap_job_scheduling_conn_id
        self.service_key: ServiceKey | None = None

    # -- connection form: declared in connections/, rendered here for Airflow 2.x -------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return form_for(cls.conn_type).form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return form_for(cls.conn_type).field_behaviour()

    # -- connection -------------------------------------------------------------------------------

    def build_client_config(self, conn: Any, extras: dict[str, Any]) -> ClientConfig:
        label = self.connection_label
        raw = extra_field(extras, self.conn_type, "service_key")
        if raw:
            key = parse_service_key(raw, self.conn_id, connection=label)
            self.url_fields = (
                "the service key's 'url'"
                if key.kind == "basic"
                else "the service key's 'url' (API) and 'uaa.url' or 'uaa.certurl' (token)"
            )
            url = self.use_url("service key 'url'", key.url)
            token_field = "service key 'uaa.certurl'" if key.kind == "x509" else "service key 'uaa.url'"
            if key.token_url:
                self.use_url(token_field, key.token_url.removesuffix("/oauth/token"))
        elif lite := self._lite_plan_credentials(conn, extras):
            host, user, password = lite
            host = host if "://" in host else f"https://{host}"
            self.url_fields = "the lite plan's REST URL (or the connection's Host)"
            url = self.use_url("lite plan REST URL", host)
            key = ServiceKey(url=url, username=user, password=password)
        else:
            raise ConnectionConfigError(
                f"{label[:1].upper()}{label[1:]} has no service_key extra: paste the instance's service key JSON "
                "into it (or, for the lite plan, fill in the REST URL, User and Password of the lite-plan binding)."
            )
        dashboard = extra_field(extras, self.conn_type, "dashboard_url") or key.dashboard_url
        self.service_key = ServiceKey(**{**key.__dict__, "url": url, "dashboard_url": dashboard})
        hints: dict[int, str] = {**STATUS_HINTS, URL_FIELDS_HINT_KEY: self.url_fields}
        if key.kind == "basic":
            basic = base64.b64encode(f"{key.username}:{key.password}".encode()).decode()
            lite_hint = (
                "The lite plan's user and password were rejected: check the service key's 'user' and 'password'."
                if raw
                else "The lite plan's user and password were rejected: check the lite plan's User and Password "
                "(the binding's 'user' and 'password') and its REST URL."
            )
            auth: Any = StaticHeaderAuth(
                {"Authorization": f"Basic {basic}"},
                identity=(url, key.username, secret_digest(key.password)),
                hint=lite_hint,
            )
            hints[401] = lite_hint
        else:
            auth = XsuaaClientCredentials(key)
            hints[401] = "The service rejected the token of a fresh login: " + auth.rejection_hint()
        return ClientConfig(
            platform=PLATFORM,
            base_url=url,
            auth=auth,
            status_hints=hints,
            timeout=parse_timeout_value(extra_field(extras, self.conn_type, "timeout"), connection=label)
            or (10.0, 60.0),
        )

    def _lite_plan_credentials(self, conn: Any, extras: dict[str, Any]) -> tuple[str, str, str] | None:
        """REST URL, user and password of a lite-plan binding: the form's fields, else Host/Login/Password."""
        values = (
            extra_field(extras, self.conn_type, "lite_plan_url") or conn.host,
            extra_field(extras, self.conn_type, "lite_plan_user") or conn.login,
            extra_field(extras, self.conn_type, "lite_plan_password") or conn.password,
        )
        return (str(values[0]), str(values[1]), str(values[2])) if all(values) else None

    def check_connection(self) -> str:
        """List one job: a cheap authenticated call that every instance serves."""
        try:
            payload = self.client.get_json("scheduler/jobs", params={"page_size": 1, "offset": 0})
        except (NotFoundError, InvalidRequestError) as err:
            if err.status_code not in (404, 405):
                raise
            raise ConnectionConfigError(
                f"SAP Job Scheduling answered HTTP {err.status_code} at /scheduler/jobs, which every instance "
                f"serves: the REST URL is wrong, not an id or a credential. Check {self.url_fields}."
            ) from None
        total = payload.get("total", "some") if isinstance(payload, Mapping) else len(payload)
        return f"Connected to SAP Job Scheduling; {total} job(s) defined."

    def job_url(self, job_id: int | str) -> str | None:
        """The job's page in the service dashboard, when the connection names the dashboard."""
        self.get_conn()
        dashboard = self.service_key.dashboard_url if self.service_key else None
        return f"{dashboard.rstrip('/')}/manageJob/{job_id}" if dashboard else None

    # -- jobs ---------------------------------------------------------------------------------------

    def _paged(self, path: str, params: dict[str, Any] | None = None, page_size: int = MAX_PAGE_SIZE) -> list[dict]:
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            payload = self.client.get_json(path, params={**(params or {}), "page_size": page_size, "offset": offset})
            page = results_of(payload)
            items.extend(page)
            offset += len(page)
            if not isinstance(payload, Mapping):
                return items  # a bare array is the whole list
            total = payload.get("total")
            if not page or (total is not None and offset >= int(total)) or len(page) < page_size:
                return items

    def list_jobs(self) -> list[dict[str, Any]]:
        return self._paged("scheduler/jobs")

    def get_job(self, job_id: int | str, *, display_schedules: bool = False) -> dict[str, Any]:
        params = {"displaySchedules": "true"} if display_schedules else None
        return self.client.get_json(f"scheduler/jobs/{job_id}", params=params)

    def find_job_by_name(self, name: str) -> dict[str, Any] | None:
        """The job named exactly ``name``, or None."""
        try:
            payload = self.client.get_json("scheduler/jobs", params={"name": name})
        except NotFoundError:
            return None
        if isinstance(payload, list) or (isinstance(payload, Mapping) and "results" in payload):
            matches = [job for job in results_of(payload) if job.get("name") == name]
            return matches[0] if matches else None
        return payload if isinstance(payload, Mapping) and payload.get("name") == name else None

    def resolve_job_id(self, job_id: int | str | None = None, job_name: str | None = None) -> int:
        if job_id not in (None, ""):
            return int(job_id)  # type: ignore[arg-type]
        if not job_name:
            raise InvalidRequestError("Give job_id or job_name.", platform=PLATFORM)
        job = self.find_job_by_name(job_name)
        if job is None:
            names = sorted(str(j.get("name")) for j in self.list_jobs())
            close = [n for n in names if job_name.lower() in n.lower()]
            raise NameResolutionError(
                f"No SAP Job Scheduling job named {job_name!r}. "
                f"{'Similar' if close else 'Existing'}: {', '.join(map(repr, (close or names)[:20])) or 'none'}.",
                platform=PLATFORM,
                details={"name": job_name, "candidates": (close or names)[:20]},
            )
        return int(job.get("_id", job.get("jobId")))

    def create_job(self, job: Mapping[str, Any]) -> dict[str, Any]:
        validate_job(job)
        return self.client.post_json("scheduler/jobs", json=dict(job), idempotent=False)

    def update_job(self, job_id: int | str, changes: Mapping[str, Any]) -> dict[str, Any]:
        check_body_size(changes)
        return _json(self.client.request("PUT", f"scheduler/jobs/{job_id}", json=dict(changes)))

    def create_or_update_job(self, job: Mapping[str, Any]) -> tuple[int, bool]:
        """Create the job, or update the one with the same name: running it twice leaves one job.

        :return: (job id, whether it was created).
        """
        validate_job(job)
        existing = self.find_job_by_name(str(job["name"]))
        if existing is None:
            created = self.create_job(job)
            return int(created.get("_id", created.get("jobId"))), True
        job_id = int(existing.get("_id", existing.get("jobId")))
        self.update_job(job_id, {k: v for k, v in job.items() if k != "schedules"})
        return job_id, False

    def delete_job(self, job_id: int | str) -> bool:
        """Delete a job; returns False when it did not exist (deleting is idempotent)."""
        try:
            self.client.request("DELETE", f"scheduler/jobs/{job_id}").close()
        except NotFoundError:
            return False
        return True

    # -- schedules --------------------------------------------------------------------------------

    def create_schedule(self, job_id: int | str, schedule: Mapping[str, Any]) -> dict[str, Any]:
        validate_schedule(schedule)
        check_body_size(schedule)
        return self.client.post_json(f"scheduler/jobs/{job_id}/schedules", json=dict(schedule), idempotent=False)

    def run_now(self, job_id: int | str, data: Any = None, description: str | None = None) -> dict[str, Any]:
        """Create a one-time ``time: now`` schedule: the service runs the job once, right away."""
        schedule: dict[str, Any] = {"time": "now", "active": True, "description": description or "Airflow run"}
        if data is not None:
            schedule["data"] = data
        return self.create_schedule(job_id, schedule)

    def get_schedule(self, job_id: int | str, schedule_id: str, *, display_logs: bool = False) -> dict[str, Any]:
        params = {"displayLogs": "true"} if display_logs else None
        return self.client.get_json(f"scheduler/jobs/{job_id}/schedules/{schedule_id}", params=params)

    def list_schedules(self, job_id: int | str) -> list[dict[str, Any]]:
        payload = self.client.get_json(f"scheduler/jobs/{job_id}/schedules")
        return results_of(payload, "results", "schedules")

    def update_schedule(self, job_id: int | str, schedule_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        check_body_size(changes)
        return _json(self.client.request("PUT", f"scheduler/jobs/{job_id}/schedules/{schedule_id}", json=dict(changes)))

    def delete_schedule(self, job_id: int | str, schedule_id: str) -> None:
        self.client.request("DELETE", f"scheduler/jobs/{job_id}/schedules/{schedule_id}").close()

    def delete_all_schedules(self, job_id: int | str) -> None:
        self.client.request("DELETE", f"scheduler/jobs/{job_id}/schedules").close()

    def set_schedules_active(self, job_id: int | str, active: bool) -> dict[str, Any]:
        """Activate or deactivate every schedule of a job."""
        return self.client.post_json(
            f"scheduler/jobs/{job_id}/schedules/activationStatus", json={"activationStatus": bool(active)}
        )

    # -- runs ---------------------------------------------------------------------------------------

    def _runs_path(self, job_id: int | str, schedule_id: str) -> str:
        return f"scheduler/jobs/{job_id}/schedules/{quote(str(schedule_id))}/runs"

    def list_runs(self, job_id: int | str, schedule_id: str) -> list[dict[str, Any]]:
        return self._paged(self._runs_path(job_id, schedule_id))

    def get_run(self, job_id: int | str, schedule_id: str, run_id: str) -> dict[str, Any]:
        return self.client.get_json(f"{self._runs_path(job_id, schedule_id)}/{run_id}")

    def update_run_log(
        self, job_id: int | str, schedule_id: str, run_id: str, *, success: bool, message: str = ""
    ) -> dict[str, Any]:
        """Report the outcome of an asynchronous run (what the job's application calls when done)."""
        return _json(
            self.client.request(
                "PUT",
                f"{self._runs_path(job_id, schedule_id)}/{run_id}",
                json={"success": bool(success), "message": message},
            )
        )

    def current_run(self, job_id: int | str, schedule_id: str, run_id: str | None = None) -> dict[str, Any]:
        """The run to wait on: ``run_id``'s log, or the schedule's first run (SCHEDULED until it exists)."""
        if run_id:
            return self.get_run(job_id, schedule_id, run_id)
        payload = self.client.get_json(self._runs_path(job_id, schedule_id), params={"page_size": 1, "offset": 0})
        return first_run(payload)

    async def acurrent_run(self, job_id: int | str, schedule_id: str, run_id: str | None = None) -> dict[str, Any]:
        client = await self.aget_client()
        if run_id:
            return await client.get_json(f"{self._runs_path(job_id, schedule_id)}/{run_id}")
        payload = await client.get_json(self._runs_path(job_id, schedule_id), params={"page_size": 1, "offset": 0})
        return first_run(payload)

    async def aset_schedule_active(self, job_id: int | str, schedule_id: str, active: bool) -> None:
        client = await self.aget_client()
        await client.request("PUT", f"scheduler/jobs/{job_id}/schedules/{schedule_id}", json={"active": active})


def results_of(payload: Any, *keys: str) -> list[dict[str, Any]]:
    """The items of a list answer: ``{"total": n, "results": [...]}`` (documented), a bare JSON array, or
    a job's ``schedules``; a wrapper without the key is an empty list, anything else an error naming it."""
    if isinstance(payload, list):
        return [item for item in payload if isinstance(item, Mapping)]
    if isinstance(payload, Mapping):
        for key in keys or ("results",):
            if isinstance(payload.get(key), list):
                return list(payload[key])
        return []
    raise SapplanError(
        f"SAP Job Scheduling answered a list request with {type(payload).__name__} {str(payload)[:80]!r} "
        "instead of JSON.",
        platform="SAP Job Scheduling",
    )


def first_run(payload: Any) -> dict[str, Any]:
    """The first run of a runs page, or a SCHEDULED placeholder while the service has not created it."""
    results = results_of(payload)
    if results:
        return dict(results[0])
    return {"runStatus": "SCHEDULED", "runState": "SCHEDULED", "runId": None}


def _json(response: Any) -> dict[str, Any]:
    try:
        return response.json() if response.content else {}
    finally:
        response.close()
