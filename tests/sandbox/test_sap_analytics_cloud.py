"""The SAC emulator over raw HTTP: auth purposes, custom-auth header, CSRF cookies, state machines, errors."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.sap_analytics_cloud import (
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    MAPPING_ID,
    MODEL_ID,
    MODEL_NAME,
    MULTI_ACTION_ID,
    REFRESH_TOKEN,
    SCHEDULE_ID,
    USER_CLIENT_ID,
    USER_CLIENT_SECRET,
)


def backend(sandbox: SandboxServer) -> Any:
    return sandbox.platforms["sap_analytics_cloud"].backend


class Sac:
    """A raw client: token, session cookies, CSRF, custom-auth header."""

    def __init__(self, sandbox: SandboxServer, *, user: bool = False) -> None:
        self.base = f"{sandbox.url}/sap-analytics-cloud/tenant"
        self.session = requests.Session()
        form = (
            {"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN}
            if user
            else {"grant_type": "client_credentials"}
        )
        auth = (USER_CLIENT_ID, USER_CLIENT_SECRET) if user else (API_CLIENT_ID, API_CLIENT_SECRET)
        answer = requests.post(f"{sandbox.url}/sap-analytics-cloud/oauth/token", data=form, auth=auth, timeout=5)
        assert answer.status_code == 200, answer.text
        self.session.headers.update(
            {"Authorization": f"Bearer {answer.json()['access_token']}", "x-sap-sac-custom-auth": "true"}
        )
        fetched = self.session.get(f"{self.base}/api/v1/csrf", headers={"x-csrf-token": "fetch"}, timeout=5)
        self.session.headers["x-csrf-token"] = fetched.headers["x-csrf-token"]

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base}{path}", timeout=5, **kwargs)

    def dm(self, action: str, body: Any, tenant: str | None = "G") -> requests.Response:
        params = {"action": action, **({"tenant": tenant} if tenant else {})}
        return self.call("POST", "/sap/fpa/services/rest/fpa/dataintegration", params=params, json=body)


ROW = {"Version": "public.Forecast", "Date": "202601", "Region": "EMEA", "Product": "P1", "SignedData": "1.5"}


def test_refresh_grant_only_for_interactive_clients_and_rotation(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/sap-analytics-cloud/oauth/token"
    form = {"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN}
    assert requests.post(url, data=form, auth=(API_CLIENT_ID, API_CLIENT_SECRET), timeout=5).status_code == 400
    backend(sandbox).configure(rotate_refresh_tokens=True)
    first = requests.post(url, data=form, auth=(USER_CLIENT_ID, USER_CLIENT_SECRET), timeout=5).json()
    assert first["refresh_token"] != REFRESH_TOKEN
    again = requests.post(url, data=form, auth=(USER_CLIENT_ID, USER_CLIENT_SECRET), timeout=5)
    assert again.status_code == 401 and again.json()["error"] == "invalid_grant"


def test_missing_custom_auth_header_gives_a_login_page(sandbox: SandboxServer) -> None:
    sac = Sac(sandbox)
    answer = sac.session.get(f"{sac.base}/api/v1/dataimport/models", headers={"x-sap-sac-custom-auth": ""}, timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/html")


def test_csrf_is_bound_to_the_session_cookie(sandbox: SandboxServer) -> None:
    sac = Sac(sandbox)
    assert sac.call("POST", f"/api/v1/dataimport/models/{MODEL_ID}/factData", json={}).status_code == 201
    sac.session.cookies.clear()
    refused = sac.call("POST", f"/api/v1/dataimport/models/{MODEL_ID}/factData", json={})
    assert refused.status_code == 403 and refused.headers["x-csrf-token"] == "Required"


def test_import_state_machine_invalid_rows_and_delete(sandbox: SandboxServer) -> None:
    sac = Sac(sandbox)
    job = sac.call("POST", f"/api/v1/dataimport/models/{MODEL_ID}/factData", json={}).json()["jobID"]
    status = sac.call("GET", f"/api/v1/dataimport/jobs/{job}/status").json()
    assert status["jobStatus"] == "READY_FOR_DATA"
    assert sac.call("POST", f"/api/v1/dataimport/jobs/{job}/run", json={}).json()["message"].startswith("[1003]")
    pushed = sac.call("POST", f"/api/v1/dataimport/jobs/{job}", json={"Data": [ROW, {**ROW, "SignedData": "x"}]})
    assert pushed.json()["failedNumberRows"] == 1
    validated = sac.call("POST", f"/api/v1/dataimport/jobs/{job}/validate", json={}).json()
    assert validated["failedNumberRows"] == 1 and validated["jobStatus"] == "READY_FOR_WRITE"
    assert sac.call("POST", f"/api/v1/dataimport/jobs/{job}/run", json={"overrideExecuteWithFailedRows": True}).ok
    again = sac.call("POST", f"/api/v1/dataimport/jobs/{job}/run", json={})
    assert again.status_code == 400 and again.json()["message"].startswith("[1010]")
    time.sleep(0.2)
    status = sac.call("GET", f"/api/v1/dataimport/jobs/{job}/status").json()
    assert status["jobStatus"] == "COMPLETED" and status["additionalInformation"]["failedNumberRows"] == "1"
    assert sac.call("GET", f"/api/v1/dataimport/jobs/{job}/invalidRows").json()["failedRows"][0]["reason"]
    assert sac.call("DELETE", f"/api/v1/dataimport/jobs/{job}").status_code == 204
    assert sac.call("GET", f"/api/v1/dataimport/jobs/{job}/status").status_code == 404


def test_active_job_limits(sandbox: SandboxServer) -> None:
    backend(sandbox).configure(max_active_jobs_per_model=1, max_active_jobs_per_user=5)
    sac = Sac(sandbox)
    assert sac.call("POST", f"/api/v1/dataimport/models/{MODEL_ID}/factData", json={}).status_code == 201
    refused = sac.call("POST", f"/api/v1/dataimport/models/{MODEL_ID}/factData", json={})
    assert refused.status_code == 400 and refused.json()["message"].startswith("[1007]")
    backend(sandbox).configure(max_active_jobs_per_model=5, max_active_jobs_per_user=1)
    assert (
        sac.call("POST", f"/api/v1/dataimport/models/{MODEL_ID}/factData", json={})
        .json()["message"]
        .startswith("[1002]")
    )


def test_multi_actions_reject_technical_tokens_and_missing_parameters(sandbox: SandboxServer) -> None:
    path = f"/api/v1/multiActions/{MULTI_ACTION_ID}/executions"
    technical = Sac(sandbox).call("POST", path, json={"parameterValues": []})
    assert technical.status_code == 403 and "[3401]" in technical.json()["message"]
    user = Sac(sandbox, user=True)
    missing = user.call("POST", path, json={"parameterValues": []})
    assert missing.status_code == 400 and "no value provided for parameter Version" in missing.json()["message"]
    started = user.call(
        "POST", path, json={"parameterValues": [{"parameterId": "Version", "value": {"memberIds": ["a"]}}]}
    )
    execution = started.json()["executionId"]
    assert user.call("GET", f"{path}/{execution}").json()["status"] == "running"
    time.sleep(0.15)
    assert user.call("GET", f"{path}/{execution}").json()["status"] == "successful"


def test_dataintegration_tenant_noop_log_delay_and_double_run(sandbox: SandboxServer) -> None:
    sac = Sac(sandbox, user=True)
    body = {"scheduleId": SCHEDULE_ID, "mappingId": MAPPING_ID}
    assert sac.dm("runScheduledJob", body, tenant=None).json()["status"] == 200
    assert backend(sandbox).noop_runs == 1 and not backend(sandbox).schedules[SCHEDULE_ID].runs
    logs_body = {"jobType": "bpcDataImport", "modelName": MODEL_NAME, "mappingId": []}
    assert sac.dm("runScheduledJob", body).json() == {"status": 200, "data": {"scheduleId": SCHEDULE_ID}}
    assert sac.dm("getScheduleLogsByModel", logs_body).json()["data"][0]["refreshLogs"] == []  # logged later
    sac.dm("runScheduledJob", body)  # a second run while the first is in flight
    time.sleep(0.15)
    codes = [run["status"] for run in sac.dm("getScheduleLogsByModel", logs_body).json()["data"][0]["refreshLogs"]]
    assert codes == [4, 4]


def test_dataintegration_html_for_technical_tokens_when_configured(sandbox: SandboxServer) -> None:
    backend(sandbox).configure(technical_token_on_dataintegration="html")
    answer = Sac(sandbox).dm("getScheduleLogsByModel", {"modelName": MODEL_NAME})
    assert answer.status_code == 200 and "<html" in answer.text


def test_rejections_csv(sandbox: SandboxServer) -> None:
    backend(sandbox).configure(rejected_rows=2)
    sac = Sac(sandbox, user=True)
    sac.dm("runScheduledJob", {"scheduleId": SCHEDULE_ID, "mappingId": MAPPING_ID})
    time.sleep(0.3)
    run = sac.dm("getScheduleLogsByModel", {"modelName": MODEL_NAME}).json()["data"][0]["refreshLogs"][0]
    assert run["status"] == 2 and run["wranglingAndUpdateResult"]["data"]["rejectedCount"] == 2
    csv_text = sac.call(
        "GET", f"/wrangling/api/dm/executions/{run['executionId']}/rejections", params={"app": "SAC"}
    ).text
    assert csv_text.splitlines()[0] == "Source,Target,Issue,Value,Records" and len(csv_text.splitlines()) == 3


@pytest.mark.parametrize("case", ["lower", "title"])
def test_multi_action_status_case(sandbox: SandboxServer, case: str) -> None:
    backend(sandbox).configure(multi_action_status_case=case, multi_action_seconds=0)
    sac = Sac(sandbox, user=True)
    path = "/api/v1/multiActions/t.G:CEEF5D0F8B3C4A5DFAIL/executions"
    execution = sac.call("POST", path, json={"parameterValues": []}).json()["executionId"]
    answer = sac.call("GET", f"{path}/{execution}").json()
    assert answer["status"] == ("failed" if case == "lower" else "Error") and answer["messages"]
