"""The sandbox server itself: faults, stats, reset, control API, keep-alive and the command line."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time

import pytest
import requests

from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.faults import FaultInjector, FaultRule

from .conftest import AnaplanClient

WORKSPACES = "GET /anaplan/api/2/0/workspaces"


def test_health(sandbox: SandboxServer) -> None:
    body = requests.get(f"{sandbox.url}/_sandbox/health").json()
    assert body["status"] == "ok" and "anaplan" in body["platforms"]


def test_status_fault_with_retry_after_then_normal_service(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.faults.add(method="GET", path_regex=r"/workspaces$", status=429, headers={"Retry-After": "1"}, times=2)
    first = client.get("/workspaces")
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "1"
    assert first.json() == {"status": {"code": 429, "message": "Too Many Requests"}}
    assert client.get("/workspaces").status_code == 429
    assert client.get("/workspaces").status_code == 200
    assert sandbox.stats.requests[WORKSPACES] == 3  # faulted requests are counted too
    assert sandbox.stats.statuses[429] == 2 and sandbox.stats.faults_applied == 2


def test_faults_apply_before_auth(sandbox: SandboxServer) -> None:
    sandbox.faults.add(path_regex="/anaplan/auth/token/authenticate", status=503, body="maintenance")
    response = requests.post(f"{sandbox.url}/anaplan/auth/token/authenticate", auth=("demo@example.com", "demo"))
    assert response.status_code == 503 and response.text == "maintenance"
    assert sandbox.stats.auth_requests["anaplan"] == 1


def test_skip_lets_requests_through_first(client: AnaplanClient, sandbox: SandboxServer) -> None:
    rule = sandbox.faults.add(method="*", path_regex=r"/chunks/\d+$", skip=2, times=1, status=500)
    client.post("/files/113000000001", json={"chunkCount": 4})
    codes = [client.put(f"/files/113000000001/chunks/{i}", data=b"x\n").status_code for i in range(4)]
    assert codes == [204, 204, 500, 204]
    assert rule.matched == 3 and rule.applied == 1  # an exhausted rule stops counting


def test_times_forever(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.faults.add(method="GET", path_regex="/imports$", status=502, times=-1)
    assert [client.get("/imports").status_code for _ in range(3)] == [502, 502, 502]
    sandbox.faults.clear()
    assert client.get("/imports").status_code == 200


def test_drop_closes_the_connection_without_a_response(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.faults.add(method="PUT", path_regex="/chunks/0$", drop=True)
    client.post("/files/113000000001", json={"chunkCount": 1})
    with pytest.raises(requests.ConnectionError):
        client.put("/files/113000000001/chunks/0", data=b"a" * 100_000)
    assert client.put("/files/113000000001/chunks/0", data=b"a\n").status_code == 204  # a new connection works
    assert sandbox.stats.statuses[0] == 1


def test_html_login_page(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.faults.add(path_regex="/workspaces", html_login=True)
    response = client.get("/workspaces")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert '<form id="logOnForm"' in response.text and 'action="/saml2/idp/sso"' in response.text


def test_delay_then_serve(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.faults.add(path_regex="/workspaces$", delay_seconds=0.2)
    start = time.monotonic()
    assert client.get("/workspaces").status_code == 200
    assert time.monotonic() - start >= 0.2
    with pytest.raises(requests.Timeout):
        sandbox.faults.add(path_regex="/workspaces$", delay_seconds=0.3)
        client.get("/workspaces", timeout=0.1)


def test_fault_control_api(sandbox: SandboxServer, client: AnaplanClient) -> None:
    rule = {"method": "GET", "path_regex": "/workspaces$", "status": 500, "times": 1}
    created = requests.post(f"{sandbox.url}/_sandbox/faults", json=rule)
    assert created.status_code == 201 and created.json()["fault"]["status"] == 500
    assert requests.post(f"{sandbox.url}/_sandbox/faults", json={"path_regex": "x"}).status_code == 400
    assert requests.post(f"{sandbox.url}/_sandbox/faults", json={"status": 500, "colour": "red"}).status_code == 400
    listed = requests.get(f"{sandbox.url}/_sandbox/faults").json()["faults"]
    assert len(listed) == 1
    assert requests.delete(f"{sandbox.url}/_sandbox/faults").status_code == 204
    assert client.get("/workspaces").status_code == 200
    # the control API itself is never faulted
    sandbox.faults.add(path_regex=".*", status=500, times=-1)
    assert requests.get(f"{sandbox.url}/_sandbox/health").status_code == 200


def test_fault_rule_validation() -> None:
    with pytest.raises(ValueError):
        FaultRule(path_regex="x")  # no action
    with pytest.raises(ValueError):
        FaultRule(status=500, drop=True)
    with pytest.raises(ValueError):
        FaultRule(status=500, path_regex="(")
    for probability in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="probability"):
            FaultRule(status=500, probability=probability)


def test_probabilistic_fault_hits_about_that_share_and_passes_the_rest_on() -> None:
    injector = FaultInjector(seed=7)
    flaky = injector.add(path_regex="/api", status=503, times=-1, probability=0.1)
    slow = injector.add(path_regex="/api", delay_seconds=0.01, times=-1, probability=0.5)
    hits = [injector.match("GET", "/api/x") for _ in range(4000)]
    assert 340 <= flaky.applied <= 460  # 10% of 4,000, give or take
    # Requests the first rule let through are offered to the next: about half of the other 90%.
    assert 1620 <= slow.applied <= 1980
    assert flaky.matched == 4000 and hits.count(None) == 4000 - flaky.applied - slow.applied
    # The same seed replays the same sequence.
    again = FaultInjector(seed=7)
    replayed = [again.add(rule) for rule in (FaultRule(**_action(flaky)), FaultRule(**_action(slow)))]
    for _ in range(4000):
        again.match("GET", "/api/x")
    assert [rule.applied for rule in replayed] == [flaky.applied, slow.applied]


def _action(rule: FaultRule) -> dict[str, object]:
    return {key: value for key, value in rule.to_dict().items() if key not in ("id", "matched", "applied")}


def test_stats_over_http_and_reset(sandbox: SandboxServer, client: AnaplanClient) -> None:
    client.get("/workspaces")
    client.start("imports", "112000000001")
    client.post("/files/113000000077", json={"chunkCount": 1})
    sandbox.anaplan.set_model_state("75A40874E6B64FA3AE0743278996850F", "locked")
    sandbox.faults.add(path_regex="nothing-matches", status=500)
    stats = requests.get(f"{sandbox.url}/_sandbox/stats").json()
    assert stats["requests"][WORKSPACES] == 1
    assert stats["tasks_started"] == {"112000000001": 1}
    assert stats["auth_requests"] == {"anaplan": 1}
    assert stats["total"] == 4
    assert stats["log"][0]["route"] == "POST /anaplan/auth/token/authenticate"

    assert requests.post(f"{sandbox.url}/_sandbox/reset").status_code == 200
    assert requests.get(f"{sandbox.url}/_sandbox/stats").json()["total"] == 0
    assert sandbox.faults.rules == []
    # the seed state is back: model unlocked, no created file, no tasks; the token still works
    files = client.get("/files").json()["files"]
    assert "113000000077" not in {f["id"] for f in files}
    assert client.get("/imports/112000000001/tasks").json()["tasks"] == []


def test_keep_alive_connection_is_reused(sandbox: SandboxServer, client: AnaplanClient) -> None:
    conn = http.client.HTTPConnection(sandbox.host, sandbox.port, timeout=5)
    headers = {"Authorization": f"AnaplanAuthToken {client.token}"}
    for _ in range(3):
        conn.request("GET", "/anaplan/api/2/0/workspaces", headers=headers)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200
        assert int(response.getheader("Content-Length") or -1) == len(body)
        json.loads(body)
    first_socket = conn.sock
    # an unauthorised upload whose body the server never reads still leaves the connection usable
    conn.request("PUT", "/anaplan/api/2/0/workspaces/x/models/y/files/z/chunks/0", body=b"z" * 300_000)
    refused = conn.getresponse()
    refused.read()
    assert refused.status == 401
    conn.request("GET", "/anaplan/api/2/0/workspaces", headers=headers)
    assert conn.getresponse().status == 200
    assert conn.sock is first_socket
    conn.close()


def test_unknown_paths(sandbox: SandboxServer) -> None:
    assert requests.get(f"{sandbox.url}/nowhere").status_code == 404
    assert requests.get(f"{sandbox.url}/anaplan/auth/token/authenticate").status_code == 405


def test_command_line_prints_ready_line_and_connection() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_sapplan.sandbox", "--port", "0", "--time-scale", "0.1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("SANDBOX READY"):
                break
        url = lines[-1].split()[-1]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        export = next(line for line in lines if "AIRFLOW_CONN_ANAPLAN_DEFAULT" in line)
        conn = json.loads(export.split("=", 1)[1].strip().strip("'"))
        assert conn["extra"]["api_url"] == f"{url}/anaplan/api/2/0"
        assert requests.get(f"{url}/_sandbox/health").json()["time_scale"] == 0.1
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
