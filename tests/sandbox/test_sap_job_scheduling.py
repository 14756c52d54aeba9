"""SAP BTP Job Scheduling fake: XSUAA tokens, lite auth, jobs, schedules, run lifecycle, faults, reset."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.sap_job_scheduling import (
    CLIENT_ID,
    CLIENT_SECRET,
    LITE_PASSWORD,
    LITE_USER,
    SEED_JOB_ID,
    SEED_JOB_NAME,
)

ERROR_KEYS = {"code", "message", "type", "detailedError"}
SPACE_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
T_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


class JssClient:
    """A keep-alive session authenticated with an XSUAA token, relative to the service key's url."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.uaa = f"{sandbox.url}/sap-job-scheduling/uaa"
        self.api = f"{sandbox.url}/sap-job-scheduling/api"
        self.session = requests.Session()

    def login(self) -> str:
        response = self.session.post(
            f"{self.uaa}/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data={"grant_type": "client_credentials"}
        )
        assert response.status_code == 200, response.text
        token = str(response.json()["access_token"])
        self.session.headers["Authorization"] = f"Bearer {token}"
        return token

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, path if path.startswith("http") else f"{self.api}{path}", **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create_job(self, name: str, **fields: Any) -> int:
        body = {"name": name, "action": "https://app.example.com/do", "httpMethod": "POST", "active": True, **fields}
        response = self.post("/scheduler/jobs", json=body)
        assert response.status_code == 201, response.text
        return int(response.json()["_id"])

    def run_now(self, job_id: int, **fields: Any) -> str:
        response = self.post(f"/scheduler/jobs/{job_id}/schedules", json={"time": "now", "active": True, **fields})
        assert response.status_code == 201, response.text
        return str(response.json()["scheduleId"])

    def runs(self, job_id: int, schedule_id: str, **params: Any) -> dict[str, Any]:
        response = self.get(f"/scheduler/jobs/{job_id}/schedules/{schedule_id}/runs", params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_run(self, job_id: int, schedule_id: str, until: str = "COMPLETED", timeout: float = 5.0) -> dict:
        """Poll the schedule's run until its runStatus (or runState) is ``until``; returns the run."""
        deadline = time.monotonic() + timeout
        while True:
            results = self.runs(job_id, schedule_id)["results"]
            if results and until in (results[0]["runStatus"], results[0]["runState"]):
                return dict(results[0])
            assert time.monotonic() < deadline, f"run still {results[0]['runState'] if results else 'missing'}"
            time.sleep(0.005)

    def states(self, job_id: int, schedule_id: str, timeout: float = 5.0) -> list[str]:
        """Every distinct runStatus/runState seen until the run completed."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not seen or not seen[-1].startswith("COMPLETED"):
            results = self.runs(job_id, schedule_id)["results"]
            state = f"{results[0]['runStatus']}/{results[0]['runState']}" if results else "none"
            if not seen or seen[-1] != state:
                seen.append(state)
            assert time.monotonic() < deadline, f"run still {state}"
            time.sleep(0.004)
        return seen


@pytest.fixture
def jss(sandbox: SandboxServer) -> JssClient:
    """A client logged in with the seeded OAuth client."""
    client = JssClient(sandbox)
    client.login()
    return client


def _jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


# ------------------------------------------------------------------------------------------- auth


def test_client_secret_token_flow(sandbox: SandboxServer) -> None:
    client = JssClient(sandbox)
    response = client.session.post(
        f"{client.uaa}/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data={"grant_type": "client_credentials"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "jti"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 43199
    claims = _jwt_claims(body["access_token"])
    assert claims["client_id"] == CLIENT_ID and claims["jti"] == body["jti"]
    assert claims["exp"] - claims["iat"] == 43199
    # the secret may also come as form fields
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert requests.post(f"{client.uaa}/oauth/token", data=form).status_code == 200
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert requests.get(f"{client.api}/scheduler/jobs", headers=headers).status_code == 200
    assert sandbox.stats.auth_requests["sap_job_scheduling"] == 2


def test_bad_credentials_and_missing_auth(sandbox: SandboxServer) -> None:
    client = JssClient(sandbox)
    bad = requests.post(
        f"{client.uaa}/oauth/token", auth=(CLIENT_ID, "wrong"), data={"grant_type": "client_credentials"}
    )
    assert bad.status_code == 401
    assert bad.json() == {"error": "unauthorized", "error_description": "Bad credentials"}
    grant = requests.post(f"{client.uaa}/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data={"grant_type": "password"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    assert requests.get(f"{client.uaa}/oauth/token").status_code == 405
    unauthenticated = requests.get(f"{client.api}/scheduler/jobs")
    assert unauthenticated.status_code == 401 and set(unauthenticated.json()) == ERROR_KEYS
    assert requests.get(f"{client.api}/scheduler/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert sandbox.stats.auth_requests["sap_job_scheduling"] == 3


def test_x509_token_endpoint_accepts_the_known_client_id(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/sap-job-scheduling/uaa-cert/oauth/token"
    ok = requests.post(url, data={"grant_type": "client_credentials", "client_id": CLIENT_ID})
    assert ok.status_code == 200 and ok.json()["token_type"] == "bearer"
    headers = {"Authorization": f"Bearer {ok.json()['access_token']}"}
    assert requests.get(f"{sandbox.url}/sap-job-scheduling/api/scheduler/jobs/1", headers=headers).status_code == 200
    assert requests.post(url, data={"grant_type": "client_credentials", "client_id": "sb-other"}).status_code == 401


def test_lite_plan_basic_auth(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/sap-job-scheduling/api/scheduler/jobs/{SEED_JOB_ID}"
    assert requests.get(url, auth=(LITE_USER, LITE_PASSWORD)).json()["name"] == SEED_JOB_NAME
    assert requests.get(url, auth=(LITE_USER, "wrong")).status_code == 401


def test_expired_tokens_are_refused(jss: JssClient, sandbox: SandboxServer) -> None:
    assert jss.get("/scheduler/jobs").status_code == 200
    expired = requests.post(f"{sandbox.url}/_sandbox/sap_job_scheduling/expire_tokens").json()["expired"]
    assert expired >= 1
    assert jss.get("/scheduler/jobs").status_code == 401
    jss.login()
    assert jss.get("/scheduler/jobs").status_code == 200


# ------------------------------------------------------------------------------------------- jobs


def test_seed_job_by_id_name_and_job_id_query(jss: JssClient) -> None:
    job = jss.get(f"/scheduler/jobs/{SEED_JOB_ID}").json()
    assert job["_id"] == 1 and job["name"] == SEED_JOB_NAME and job["active"] is True
    assert job["action"] == "https://planning-app.example.com/refresh" and job["httpMethod"] == "POST"
    assert "schedules" not in job
    assert jss.get("/scheduler/jobs", params={"name": SEED_JOB_NAME}).json()["_id"] == 1
    assert jss.get("/scheduler/jobs", params={"jobId": 1, "displaySchedules": "true"}).json()["schedules"] == []
    missing = jss.get("/scheduler/jobs/99")
    assert missing.status_code == 404
    assert set(missing.json()) == ERROR_KEYS and missing.json()["code"] == 404
    assert jss.get("/scheduler/jobs", params={"name": "no_such_job"}).status_code == 404
    assert jss.get("/scheduler/jobs", params={"name": SEED_JOB_NAME, "page_size": 5}).status_code == 400


def test_create_job_with_schedules_returns_201_location_and_data_string(jss: JssClient) -> None:
    body = {
        "name": "validateSalesOrder",
        "description": "cron job that validates sales order requests",
        "action": "https://salesorderapp.example.com/salesOrders/validate",
        "active": True,
        "httpMethod": "PUT",
        "ansConfig": {"onError": False, "onSuccess": False},
        "schedules": [
            {
                "cron": "* * * * * */10 0",
                "description": "every 10 minutes",
                "data": {"salesOrderId": "1234"},
                "active": True,
                "startTime": {"date": "2015-10-20 04:30 +0000", "format": "YYYY-MM-DD HH:mm Z"},
            }
        ],
    }
    response = jss.post("/scheduler/jobs", json=body)
    assert response.status_code == 201
    assert response.headers["Location"] == "/scheduler/jobs/2"
    job = response.json()
    assert job["_id"] == 2 and job["signatureVersion"] == 0 and job["ansConfig"] == body["ansConfig"]
    schedule = job["schedules"][0]
    assert schedule["type"] == "recurring" and schedule["cron"] == "* * * * * */10 0"
    assert schedule["data"] == '{"salesOrderId":"1234"}'  # a JSON string, not an object
    assert schedule["startTime"] == "2015-10-20 04:30:00"
    assert re.fullmatch(r"[0-9a-f-]{36}", schedule["scheduleId"])
    details = jss.get("/scheduler/jobs/2", params={"displaySchedules": "true"}).json()
    assert details["schedules"][0]["scheduleId"] == schedule["scheduleId"]
    assert json.loads(details["schedules"][0]["data"]) == {"salesOrderId": "1234"}
    listed = jss.get("/scheduler/jobs").json()["results"]
    assert [j["jobId"] for j in listed] == [1, 2]
    assert listed[1]["ACTIVECOUNT"] == 1 and listed[1]["jobType"] == "HTTP_ENDPOINT"
    assert SPACE_TS.match(listed[1]["createdAt"])


def test_list_paging_filter_and_page_size_limit(jss: JssClient) -> None:
    for i in range(25):
        jss.create_job(f"report_{i:02d}")
    first = jss.get("/scheduler/jobs")
    assert first.headers["X-Breaking-Change-Date"] == "2026-10-26" and "Deprecation" in first.headers
    page = first.json()
    assert page["total"] == 26 and len(page["results"]) == 10
    assert page["prev_url"] is None and page["next_url"] == "/scheduler/jobs?page_size=10&offset=10"
    last = jss.get("/scheduler/jobs", params={"page_size": 10, "offset": 20}).json()
    assert len(last["results"]) == 6 and last["next_url"] is None
    assert last["prev_url"] == "/scheduler/jobs?page_size=10&offset=10"
    everything = jss.get("/scheduler/jobs", params={"page_size": 100, "offset": 0}).json()
    assert len(everything["results"]) == 26 and everything["next_url"] is None
    too_big = jss.get("/scheduler/jobs", params={"page_size": 101})
    assert too_big.status_code == 400 and set(too_big.json()) == ERROR_KEYS
    contains = jss.get("/scheduler/jobs", params={"filter": "contains(name, 'report_1')", "page_size": 100}).json()
    assert contains["total"] == 10
    either = jss.get("/scheduler/jobs", params={"filter": "name eq 'report_03' or eq(name,'report_04')"}).json()
    assert [j["name"] for j in either["results"]] == ["report_03", "report_04"]
    assert jss.get("/scheduler/jobs", params={"filter": "colour eq 'red'"}).status_code == 400
    newest = jss.get("/scheduler/jobs", params={"sort_by": "name", "sort_order": "DESC", "page_size": 1}).json()
    assert newest["results"][0]["name"] == "report_24"


def test_update_put_by_name_and_delete(jss: JssClient) -> None:
    job_id = jss.create_job("sync_forecast", description="first")
    updated = jss.put(f"/scheduler/jobs/{job_id}", json={"description": "second", "active": False})
    assert updated.status_code == 200 and updated.json() == {"success": True}
    job = jss.get(f"/scheduler/jobs/{job_id}").json()
    assert job["description"] == "second" and job["active"] is False and job["action"] == "https://app.example.com/do"
    assert jss.put(f"/scheduler/jobs/{job_id}", json={"name": SEED_JOB_NAME}).status_code == 400  # name taken
    assert jss.put("/scheduler/jobs/99", json={"active": True}).status_code == 404
    # configure by name: updates an existing job, creates a missing one
    assert jss.put("/scheduler/jobs/sync_forecast", json={"httpMethod": "GET"}).json() == {"success": True}
    assert jss.get(f"/scheduler/jobs/{job_id}").json()["httpMethod"] == "GET"
    created = jss.put("/scheduler/jobs/new_by_name", json={"action": "https://app.example.com/n", "active": True})
    assert created.status_code == 201 and created.json()["httpMethod"] == "POST"
    assert created.headers["Location"] == f"/scheduler/jobs/{created.json()['_id']}"
    assert (
        jss.put("/scheduler/jobs/other_name", json={"name": "mismatch", "action": "https://a.b/c"}).status_code == 400
    )
    deleted = jss.delete(f"/scheduler/jobs/{job_id}")
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert jss.get(f"/scheduler/jobs/{job_id}").status_code == 404
    assert jss.delete(f"/scheduler/jobs/{job_id}").status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"action": "https://a.example.com/x", "httpMethod": "POST"}, "'name' is required"),
        ({"name": "j", "httpMethod": "POST"}, "'action' is required"),
        ({"name": "j", "action": "https://a.example.com/x"}, "'httpMethod' is required"),
        ({"name": "j", "action": "https://a.example.com/x", "httpMethod": "FETCH"}, "'httpMethod' must be one of"),
        ({"name": "j", "action": "not a url", "httpMethod": "GET"}, "fully qualified"),
        ({"name": "12345", "action": "https://a.example.com/x", "httpMethod": "GET"}, "only of numbers"),
        ({"name": "a/b", "action": "https://a.example.com/x", "httpMethod": "GET"}, "special characters"),
        ({"name": SEED_JOB_NAME, "action": "https://a.example.com/x", "httpMethod": "GET"}, "already exists"),
        (
            {"name": "j", "action": "https://a.example.com/x", "httpMethod": "GET", "calmConfig": {}},
            "'calmConfig' object cannot be empty",
        ),
        (
            {"name": "j", "action": "https://a.example.com/x", "httpMethod": "GET", "schedules": [{"active": True}]},
            "one of cron, time, repeatInterval, repeatAt is required",
        ),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_create_job_validation(jss: JssClient, body: Any, fragment: str) -> None:
    response = jss.post("/scheduler/jobs", json=body)
    assert response.status_code == 400
    error = response.json()
    assert set(error) == ERROR_KEYS and error["code"] == 400 and error["type"] == "Bad Request/Invalid Request"
    assert fragment in error["message"] and error["message"].startswith("Error while creating job")
    assert jss.get("/scheduler/jobs").json()["total"] == 1  # nothing was created


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ({"active": True, "time": "now", "cron": "* * * * * * *"}, "at most one"),
        ({"active": True}, "is required"),
        ({"active": True, "cron": "0 * * * *"}, "expected 7 fields"),
        ({"active": True, "time": "tomorrow at 2am"}, "invalid time"),
        ({"time": "now"}, "'active' is required"),
        ({"active": "maybe", "time": "now"}, "'active' must be true or false"),
        ({"active": True, "time": "now", "data": [1]}, "'data' must be a JSON object"),
    ],
)
def test_create_schedule_validation(jss: JssClient, sandbox: SandboxServer, schedule: Any, fragment: str) -> None:
    response = jss.post(f"/scheduler/jobs/{SEED_JOB_ID}/schedules", json=schedule)
    assert response.status_code == 400 and fragment in response.json()["message"]
    assert sandbox.stats.tasks_started["jss:1"] == 0


def test_bodies_over_100_kb_are_413(jss: JssClient) -> None:
    body = {"name": "big", "action": "https://a.example.com/x", "httpMethod": "POST", "description": "x" * 102_400}
    response = jss.post("/scheduler/jobs", json=body)
    assert response.status_code == 413 and response.json()["message"] == "request entity too large"
    schedule = {"time": "now", "active": True, "data": {"blob": "y" * 110_000}}
    assert jss.post(f"/scheduler/jobs/{SEED_JOB_ID}/schedules", json=schedule).status_code == 413
    assert jss.get("/scheduler/jobs").status_code == 200  # the connection is still usable


# ------------------------------------------------------------------------------------ schedules


def test_schedule_crud_activation_and_mode_change(jss: JssClient) -> None:
    base = f"/scheduler/jobs/{SEED_JOB_ID}/schedules"
    cron = jss.post(base, json={"cron": "* * * * 6 0 0", "active": True, "description": "daily"})
    assert cron.status_code == 201 and cron.headers["Location"] == f"{base}/{cron.json()['scheduleId']}"
    assert cron.json()["jobId"] == SEED_JOB_ID and cron.json()["nextRunAt"] is None  # recurring: inert
    interval = jss.post(base, json={"repeatInterval": "2 hours", "active": False}).json()
    listed = jss.get(base).json()
    assert listed["total"] == 2 and [s["type"] for s in listed["results"]] == ["recurring", "recurring"]
    paged = jss.get(base, params={"page_size": 1, "offset": 1}).json()
    assert paged["results"][0]["scheduleId"] == interval["scheduleId"] and paged["prev_url"] is not None
    one = f"{base}/{cron.json()['scheduleId']}"
    changed = jss.put(one, json={"cron": "* * * * 7 0 0", "description": "later"})
    assert changed.status_code == 200 and changed.json()["cron"] == "* * * * 7 0 0"
    assert jss.put(one, json={"repeatInterval": "5 minutes"}).status_code == 400  # mode cannot change
    assert jss.put(one, json={}).status_code == 400
    assert jss.post(f"{base}/activationStatus", json={"activationStatus": False}).json() == {"success": True}
    assert all(s["active"] is False for s in jss.get(base).json()["results"])
    assert jss.post(f"{base}/activationStatus", json={}).status_code == 400
    assert jss.delete(one).json() == {"success": True}
    assert jss.get(one).status_code == 404
    assert jss.delete(base).json() == {"success": True}
    assert jss.get(base).json()["total"] == 0
    assert jss.get("/scheduler/jobs/99/schedules").status_code == 404


def test_inactive_schedule_runs_once_activated(jss: JssClient, sandbox: SandboxServer) -> None:
    schedule_id = jss.run_now(SEED_JOB_ID, active=False)
    time.sleep(0.05)
    assert jss.runs(SEED_JOB_ID, schedule_id)["total"] == 0
    jss.post(f"/scheduler/jobs/{SEED_JOB_ID}/schedules/activationStatus", json={"activationStatus": True})
    assert jss.wait_run(SEED_JOB_ID, schedule_id)["runState"] == "SUCCESS"
    assert sandbox.stats.tasks_started["jss:1"] == 1


# ------------------------------------------------------------------------------------------- runs


def test_run_now_lifecycle_success(jss: JssClient, sandbox: SandboxServer) -> None:
    sandbox.sap_job_scheduling.configure(SEED_JOB_ID, scheduled_seconds=10, running_seconds=10)  # 0.2 s each
    created = jss.post(
        f"/scheduler/jobs/{SEED_JOB_ID}/schedules",
        json={"time": "now", "active": "true", "description": "airflow run", "data": {"k": "v"}},
    )
    assert created.status_code == 201
    schedule = created.json()
    assert schedule["type"] == "one-time" and schedule["active"] is True and schedule["data"] == '{"k":"v"}'
    assert schedule["jobId"] == SEED_JOB_ID and SPACE_TS.match(schedule["time"])
    assert created.headers["Location"] == f"/scheduler/jobs/1/schedules/{schedule['scheduleId']}"
    states = jss.states(SEED_JOB_ID, schedule["scheduleId"])
    assert states == ["SCHEDULED/SCHEDULED", "RUNNING/TRIGGERED", "COMPLETED/SUCCESS"]
    page = jss.runs(SEED_JOB_ID, schedule["scheduleId"])
    assert page["total"] == 1 and page["next_url"] is None and page["prev_url"] is None
    run = page["results"][0]
    assert run["httpStatus"] == 200 and run["runText"] == "OK" and re.fullmatch(r"[0-9a-f-]{36}", run["runId"])
    for key in ("scheduleTimestamp", "executionTimestamp", "completionTimestamp"):
        assert T_TS.match(run[key]), run
    single = jss.get(f"/scheduler/jobs/1/schedules/{schedule['scheduleId']}/runs/{run['runId']}").json()
    assert single == run
    details = jss.get(f"/scheduler/jobs/1/schedules/{schedule['scheduleId']}", params={"displayLogs": "true"}).json()
    assert details["active"] is False  # one-time schedules are deactivated once their run completed
    log = details["logs"][0]
    assert log["runId"] == run["runId"] and log["locale"] == "en" and log["statusMessage"]
    for key in ("scheduleTimestamp", "executionTimestamp", "completionTimestamp"):
        assert SPACE_TS.match(log[key]), log
    events = json.loads(log["runText"])
    assert [e["type"] for e in events] == ["SCHEDULED", "TRIGGERED", "SUCCESS"]
    assert events[-1] == {"time": log["completionTimestamp"], "type": "SUCCESS", "text": "OK", "code": 200}
    assert "logs" not in jss.get(f"/scheduler/jobs/1/schedules/{schedule['scheduleId']}").json()
    assert jss.get(f"/scheduler/jobs/1/schedules/{schedule['scheduleId']}/runs/nope").status_code == 404


@pytest.mark.parametrize(
    ("outcome", "state", "http_status", "text"),
    [
        ("error", "ERROR", 500, "Internal Server Error"),
        ("request_error", "REQUEST_ERROR", 404, "Response: Cannot POST /refresh\n"),
    ],
)
def test_failing_outcomes(
    jss: JssClient, sandbox: SandboxServer, outcome: str, state: str, http_status: int, text: str
) -> None:
    sandbox.sap_job_scheduling.configure(job_name=SEED_JOB_NAME, outcome=outcome)
    schedule_id = jss.run_now(SEED_JOB_ID)
    run = jss.wait_run(SEED_JOB_ID, schedule_id)
    assert (run["runState"], run["httpStatus"], run["runText"]) == (state, http_status, text)
    log = jss.get(f"/scheduler/jobs/1/schedules/{schedule_id}?displayLogs=true").json()["logs"][0]
    assert json.loads(log["runText"])[-1]["code"] == http_status


@pytest.mark.parametrize(("success", "state"), [(True, "SUCCESS"), (False, "ERROR")])
def test_async_run_completed_by_update_run_log(
    jss: JssClient, sandbox: SandboxServer, success: bool, state: str
) -> None:
    job_id = jss.create_job("async_job")
    config = requests.post(
        f"{sandbox.url}/_sandbox/sap_job_scheduling/config", json={"job_id": job_id, "outcome": "async"}
    )
    assert config.status_code == 200 and config.json()["config"]["outcome"] == "async"
    schedule_id = jss.run_now(job_id)
    run = jss.wait_run(job_id, schedule_id, until="ACK_RECVD")
    assert run["runStatus"] == "RUNNING" and run["httpStatus"] == 202
    time.sleep(0.15)  # longer than the default async timeout: "async" waits for the application
    assert jss.runs(job_id, schedule_id)["results"][0]["runState"] == "ACK_RECVD"
    path = f"/scheduler/jobs/{job_id}/schedules/{schedule_id}/runs/{run['runId']}"
    assert jss.put(path, json={"message": "no success flag"}).status_code == 400
    updated = jss.put(path, json={"success": success, "message": "processed 1000 records"})
    assert updated.status_code == 200 and updated.json() == {"success": True}
    final = jss.get(path).json()
    assert (final["runStatus"], final["runState"], final["runText"]) == ("COMPLETED", state, "processed 1000 records")
    assert jss.put(path, json={"success": True}).status_code == 400  # already completed
    events = json.loads(
        jss.get(f"/scheduler/jobs/{job_id}/schedules/{schedule_id}?displayLogs=true").json()["logs"][0]["runText"]
    )
    assert [e["type"] for e in events] == ["SCHEDULED", "TRIGGERED", "ACK_RECVD", state]


def test_async_timeout_ends_unknown(jss: JssClient, sandbox: SandboxServer) -> None:
    sandbox.sap_job_scheduling.configure(SEED_JOB_ID, outcome="async_timeout", async_timeout_seconds=3)
    schedule_id = jss.run_now(SEED_JOB_ID)
    assert jss.wait_run(SEED_JOB_ID, schedule_id, until="ACK_RECVD")["httpStatus"] == 202
    run = jss.wait_run(SEED_JOB_ID, schedule_id)
    assert run["runState"] == "UNKNOWN" and "did not update the run log" in run["runText"]
    assert jss.get(f"/scheduler/jobs/1/schedules/{schedule_id}").json()["active"] is False


def test_exactly_one_run_per_time_now_schedule(jss: JssClient, sandbox: SandboxServer) -> None:
    first = jss.run_now(SEED_JOB_ID)
    second = jss.run_now(SEED_JOB_ID)
    for schedule_id in (first, second):
        jss.wait_run(SEED_JOB_ID, schedule_id)
    time.sleep(0.05)
    for schedule_id in (first, second):
        assert jss.runs(SEED_JOB_ID, schedule_id)["total"] == 1
    assert sandbox.stats.tasks_started["jss:1"] == 2
    assert len(sandbox.sap_job_scheduling.runs()) == 2
    assert len(requests.get(f"{sandbox.url}/_sandbox/sap_job_scheduling/runs").json()["runs"]) == 2


def test_iso_times_and_rescheduling_with_run_cursors(jss: JssClient, sandbox: SandboxServer) -> None:
    soon = (datetime.now(timezone.utc) + timedelta(seconds=0.4)).isoformat()
    schedule_id = jss.run_now(SEED_JOB_ID, time=soon)
    pending = jss.get(f"/scheduler/jobs/1/schedules/{schedule_id}").json()
    assert pending["nextRunAt"] is not None and jss.runs(SEED_JOB_ID, schedule_id)["total"] == 0
    assert jss.wait_run(SEED_JOB_ID, schedule_id, timeout=3)["runState"] == "SUCCESS"
    assert (
        jss.post("/scheduler/jobs/1/schedules", json={"time": "2020-01-01T00:00:00Z", "active": True}).status_code
        == 201
    )
    # a new time re-schedules a one-time schedule: a second and third run on the same schedule
    path = f"/scheduler/jobs/1/schedules/{schedule_id}"
    for _ in range(2):
        assert jss.put(path, json={"time": "now", "active": True}).status_code == 200
        deadline = time.monotonic() + 3
        while jss.runs(SEED_JOB_ID, schedule_id, page_size=10, offset=0)["results"][-1]["runStatus"] != "COMPLETED":
            assert time.monotonic() < deadline
            time.sleep(0.005)
    everything = jss.runs(SEED_JOB_ID, schedule_id)
    assert everything["total"] == 3
    ids = [r["runId"] for r in everything["results"]]
    page = jss.runs(SEED_JOB_ID, schedule_id, page_size=2, offset=0)
    assert [r["runId"] for r in page["results"]] == ids[:2]
    assert page["next_url"] == f"{path}/runs?page_size=2&offset=2"
    after = jss.runs(SEED_JOB_ID, schedule_id, page_size=2, next=ids[0])
    assert [r["runId"] for r in after["results"]] == ids[1:]
    assert after["prev_url"] == f"{path}/runs?page_size=2&prev={ids[1]}" and after["next_url"] is None
    before = jss.runs(SEED_JOB_ID, schedule_id, page_size=2, prev=ids[2])
    assert [r["runId"] for r in before["results"]] == ids[:2]
    assert sandbox.stats.tasks_started["jss:1"] == 4


# ----------------------------------------------------------------------------- faults and control


def test_rate_limit_faults_429_and_503_throttling(jss: JssClient, sandbox: SandboxServer) -> None:
    sandbox.faults.add(
        method="GET",
        path_regex=r"^/sap-job-scheduling/api/scheduler/jobs$",
        status=429,
        headers={"retry-after": "2"},
        body={"code": 429, "message": "Too many requests", "type": "Too Many Requests", "detailedError": ""},
    )
    rule = {
        "method": "POST",
        "path_regex": r"/sap-job-scheduling/api/scheduler/jobs/\d+/schedules$",
        "status": 503,
        "headers": {"throttling": "1250"},
        "delay_seconds": 0.05,
    }
    assert requests.post(f"{sandbox.url}/_sandbox/faults", json=rule).status_code == 201
    limited = jss.get("/scheduler/jobs")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json()["message"] == "Too many requests"
    assert jss.get("/scheduler/jobs").status_code == 200
    started = time.monotonic()
    unavailable = jss.post("/scheduler/jobs/1/schedules", json={"time": "now", "active": True})
    assert unavailable.status_code == 503 and unavailable.headers["throttling"] == "1250"
    assert time.monotonic() - started >= 0.05
    assert sandbox.stats.tasks_started["jss:1"] == 0  # the faulted request never reached the service
    assert jss.post("/scheduler/jobs/1/schedules", json={"time": "now", "active": True}).status_code == 201
    assert sandbox.stats.faults_applied == 2
    assert sandbox.stats.requests["GET /sap-job-scheduling/api/scheduler/jobs"] == 2


def test_throttling_header_on_successful_answers(jss: JssClient, sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/_sandbox/sap_job_scheduling/throttling"
    assert requests.post(url, json={"throttling_ms": 250}).json() == {"throttling_ms": 250.0}
    response = jss.get("/scheduler/jobs/1")
    assert response.status_code == 200 and response.headers["throttling"] == "250"
    assert requests.post(url, json={"throttling_ms": -1}).status_code == 400
    sandbox.sap_job_scheduling.set_throttling(0)
    assert "throttling" not in jss.get("/scheduler/jobs/1").headers


def test_control_config_validation(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/_sandbox/sap_job_scheduling/config"
    assert requests.post(url, json={"outcome": "explode"}).status_code == 400
    assert requests.post(url, json={"job_id": 1, "job_name": "x", "outcome": "error"}).status_code == 400
    assert requests.post(url, json={"colour": "red"}).status_code == 400
    assert requests.post(url, json={"running_seconds": 2}).json()["config"]["running_seconds"] == 2.0
    assert requests.post(url, json={"job_name": SEED_JOB_NAME, "outcome": "error"}).status_code == 200
    config = requests.get(url).json()
    assert config["defaults"]["running_seconds"] == 2.0 and config["job_names"] == {SEED_JOB_NAME: {"outcome": "error"}}
    assert sandbox.sap_job_scheduling.config_for(SEED_JOB_ID).outcome == "error"


def test_reset_restores_the_seed(jss: JssClient, sandbox: SandboxServer) -> None:
    job_id = jss.create_job("temporary")
    jss.run_now(SEED_JOB_ID)
    jss.delete(f"/scheduler/jobs/{SEED_JOB_ID}")
    sandbox.sap_job_scheduling.configure(outcome="error")
    assert requests.post(f"{sandbox.url}/_sandbox/reset").status_code == 200
    jobs = jss.get("/scheduler/jobs").json()  # the token survives a reset
    assert [j["name"] for j in jobs["results"]] == [SEED_JOB_NAME]
    assert jss.get(f"/scheduler/jobs/{SEED_JOB_ID}/schedules").json()["total"] == 0
    assert sandbox.sap_job_scheduling.defaults.outcome == "success"
    assert jss.create_job("after_reset") == job_id  # ids start again after the seed job


def test_connection_hint_holds_a_nested_service_key(sandbox: SandboxServer) -> None:
    line = next(x for x in sandbox.connection_hints() if "AIRFLOW_CONN_SAP_JOB_SCHEDULING_DEFAULT" in x)
    conn = json.loads(line.split("=", 1)[1].strip().strip("'"))
    key = conn["extra"]["service_key"]
    assert conn["conn_type"] == "sap_job_scheduling"
    assert key["url"] == f"{sandbox.url}/sap-job-scheduling/api"
    assert key["uaa"] == {
        "url": f"{sandbox.url}/sap-job-scheduling/uaa",
        "clientid": CLIENT_ID,
        "clientsecret": CLIENT_SECRET,
    }
    token = requests.post(
        f"{key['uaa']['url']}/oauth/token",
        auth=(key["uaa"]["clientid"], key["uaa"]["clientsecret"]),
        data={"grant_type": "client_credentials"},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{key['url']}/scheduler/jobs", headers=headers).json()["total"] == 1
    assert "sap_job_scheduling" in requests.get(f"{sandbox.url}/_sandbox/health").json()["platforms"]


def test_many_long_runs_are_not_rescanned_on_every_request(
    jss: JssClient, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Thousands of waits each poll their own long run (benchmarks/trigger_density.py --mix): a request
    # must not look at every unfinished run, yet a run that ends is still finalised on time.
    from airflow_provider_sapplan.sandbox.sap_job_scheduling.models import Run

    backend = sandbox.sap_job_scheduling
    backend.configure(SEED_JOB_ID, scheduled_seconds=0, running_seconds=1_000_000)
    body = {"time": "now", "active": "true", "description": "airflow run"}
    long_ids = [jss.post(f"/scheduler/jobs/{SEED_JOB_ID}/schedules", json=body).json() for _ in range(50)]
    backend.configure(SEED_JOB_ID, scheduled_seconds=0, running_seconds=10)  # 0.2 s at the fixture's scale
    short = jss.post(f"/scheduler/jobs/{SEED_JOB_ID}/schedules", json=body).json()
    jss.get(f"/scheduler/jobs/{SEED_JOB_ID}/schedules/{short['scheduleId']}/runs")  # the runs exist now

    looks: list[int] = []
    original = Run.completed_at
    monkeypatch.setattr(Run, "completed_at", lambda self: looks.append(1) or original(self))
    for _ in range(5):
        jss.get(f"/scheduler/jobs/{SEED_JOB_ID}/schedules/{long_ids[0]['scheduleId']}/runs")
    assert len(looks) <= 5  # the run each answer renders, not the 51 unfinished runs per request
    assert jss.states(SEED_JOB_ID, short["scheduleId"])[-1] == "COMPLETED/SUCCESS"
    assert len(looks) > 50  # the short run's end was due: one scan finalised it
    assert jss.runs(SEED_JOB_ID, long_ids[0]["scheduleId"])["results"][0]["runStatus"] == "RUNNING"
