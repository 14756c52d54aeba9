"""Configured sandbox credentials (sandbox/credentials.py): accepted instead of the documented ones, never printed."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.anaplan import USER_EMAIL, USER_PASSWORD
from airflow_provider_sapplan.sandbox.credentials import SandboxCredentials

CREDENTIALS = {
    "anaplan": {"user": "s3@example.com", "password": "S3CR3T-anaplan-pw"},
    "sap_job_scheduling": {"client_id": "jss-client", "client_secret": "S3CR3T-jss", "lite_password": "S3CR3T-lite"},
    "sap_cloud_integration": {"api_client_secret": "S3CR3T-cpi-api", "flow_client_secret": "S3CR3T-cpi-flow"},
    "sap_data_intelligence": {"password": "S3CR3T-di"},
    "sap_analytics_cloud": {"user_client_secret": "S3CR3T-sac", "refresh_token": "S3CR3T-sac-refresh"},
}


@pytest.fixture(scope="module")
def configured() -> Iterator[SandboxServer]:
    with SandboxServer(port=0, time_scale=0.02) as server:
        server.context.credentials.update(CREDENTIALS)
        yield server


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_anaplan_accepts_only_the_configured_login(configured: SandboxServer) -> None:
    url = f"{configured.url}/anaplan/auth/token/authenticate"
    assert requests.post(url, auth=("s3@example.com", "S3CR3T-anaplan-pw"), timeout=5).status_code == 201
    assert requests.post(url, auth=(USER_EMAIL, USER_PASSWORD), timeout=5).status_code == 401
    assert requests.post(url, auth=("s3@example.com", "S3CR3T-anaplan-pw-x"), timeout=5).status_code == 401


def test_job_scheduling_client_and_lite_user(configured: SandboxServer) -> None:
    url = f"{configured.url}/sap-job-scheduling/uaa/oauth/token"
    form = {"grant_type": "client_credentials"}
    assert requests.post(url, data=form, auth=("jss-client", "S3CR3T-jss"), timeout=5).status_code == 200
    assert requests.post(url, data=form, auth=("jss-client", "sandbox-secret"), timeout=5).status_code == 401
    cert = f"{configured.url}/sap-job-scheduling/uaa-cert/oauth/token"
    assert requests.post(cert, data={**form, "client_id": "jss-client"}, timeout=5).status_code == 200
    jobs = f"{configured.url}/sap-job-scheduling/api/scheduler/jobs"
    assert requests.get(jobs, headers=_basic("sandbox-user", "S3CR3T-lite"), timeout=5).status_code == 200
    assert requests.get(jobs, headers=_basic("sandbox-user", "sandbox-password"), timeout=5).status_code == 401


def test_cloud_integration_clients(configured: SandboxServer) -> None:
    url = f"{configured.url}/sap-cloud-integration/oauth/token"
    form = {"grant_type": "client_credentials"}
    ok = requests.post(url, data=form, auth=("sb-cpi-flow!b1|it-rt!b1", "S3CR3T-cpi-flow"), timeout=5)
    assert ok.status_code == 200 and ok.json()["scope"] == "it.flow"
    assert requests.post(url, data=form, auth=("sb-cpi-api!b1|it!b1", "cpi-api-secret"), timeout=5).status_code == 401


def test_data_intelligence_basic_user(configured: SandboxServer) -> None:
    url = f"{configured.url}/sap-data-intelligence/app/rms/api/dt/v1/replicationflows"
    headers = {"X-Requested-With": "Fetch"}
    good = requests.get(url, headers={**headers, **_basic("default\\etl_user", "S3CR3T-di")}, timeout=5)
    assert good.status_code == 200 and good.headers["Content-Type"].startswith("application/json")
    bad = requests.get(url, headers={**headers, **_basic("default\\etl_user", "di-secret")}, timeout=5)
    assert bad.headers["Content-Type"].startswith("text/html")  # DI's logon page on 200


def test_analytics_cloud_client_and_refresh_token(configured: SandboxServer) -> None:
    url = f"{configured.url}/sap-analytics-cloud/oauth/token"
    client = ("sb-sac-interactive-client", "S3CR3T-sac")
    good = {"grant_type": "refresh_token", "refresh_token": "S3CR3T-sac-refresh"}
    assert requests.post(url, data=good, auth=client, timeout=5).status_code == 200
    stale = {"grant_type": "refresh_token", "refresh_token": "sac-sandbox-refresh-token"}
    assert requests.post(url, data=stale, auth=client, timeout=5).status_code == 401
    old_secret = ("sb-sac-interactive-client", "sac-interactive-secret")
    assert requests.post(url, data=good, auth=old_secret, timeout=5).status_code == 401


def test_reset_keeps_configured_credentials(configured: SandboxServer) -> None:
    configured.reset()
    url = f"{configured.url}/anaplan/auth/token/authenticate"
    assert requests.post(url, auth=("s3@example.com", "S3CR3T-anaplan-pw"), timeout=5).status_code == 201


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"anaplon": {}}, "unknown sandbox platform 'anaplon'"),
        ({"anaplan": {"pasword": "x"}}, "unknown anaplan credential 'pasword': use one of user, password"),
        ({"anaplan": {"password": ""}}, "must be a non-empty string"),
        ({"anaplan": "x"}, "credentials of anaplan are an object"),
    ],
)
def test_bad_credentials_name_the_fix(values: dict, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        SandboxCredentials(values)
    assert fragment in str(info.value)


def test_repr_names_keys_only() -> None:
    creds = SandboxCredentials(CREDENTIALS)
    assert "S3CR3T" not in repr(creds) and "password" in repr(creds)


def test_cli_accepts_a_credentials_file_and_never_prints_it(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(CREDENTIALS))
    log = tmp_path / "sandbox.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_sapplan.sandbox", "--port", "0", "--credentials", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.time() + 30
        url = ""
        while not url and time.time() < deadline:
            url = next((ln.split()[-1] for ln in log.read_text().splitlines() if ln.startswith("SANDBOX READY")), "")
            time.sleep(0.1)
        assert url, log.read_text()
        auth = ("s3@example.com", "S3CR3T-anaplan-pw")
        assert requests.post(f"{url}/anaplan/auth/token/authenticate", auth=auth, timeout=5).status_code == 201
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "S3CR3T" not in log.read_text()
    assert "not printed" in log.read_text()


def test_cli_refuses_a_bad_credentials_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"anaplan": {"pasword": "S3CR3T-typo"}}))
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_sapplan.sandbox", "--port", "0", "--credentials", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "unknown anaplan credential 'pasword'" in done.stderr
    assert "S3CR3T" not in done.stderr + done.stdout
