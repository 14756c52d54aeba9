"""Sandbox outages: refused connections, dropped requests and 503s for N seconds, then normal service."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.outage import OUTAGE_MESSAGE

from .conftest import AnaplanClient

JSS_HEALTH = "/sap-job-scheduling/api/scheduler/jobs"


def refused(sandbox: SandboxServer) -> bool:
    """True when a TCP connection to the sandbox's port is refused by the kernel."""
    with socket.socket() as sock:
        sock.settimeout(2)
        try:
            sock.connect((sandbox.host, sandbox.port))
        except ConnectionRefusedError:
            return True
    return False


def test_refuse_closes_the_port_then_binds_it_again(client: AnaplanClient, sandbox: SandboxServer) -> None:
    port = sandbox.port
    assert client.get("/workspaces").status_code == 200  # a keep-alive connection is open
    before = sandbox.stats.total
    state = sandbox.outage(0.6, "refuse")
    assert state["mode"] == "refuse" and state["ended_at"] is None and 0 < state["remaining"] <= 0.6
    assert refused(sandbox)
    with pytest.raises(requests.ConnectionError):
        client.get("/workspaces")  # the kept-alive connection was cut, and a new one is refused
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sandbox.url}/_sandbox/health", timeout=2)  # the control API is down too
    assert sandbox.outages.listening is False and sandbox.outages.active is not None
    assert sandbox.outages.wait_over(timeout=5)
    assert sandbox.port == port and not refused(sandbox)
    assert client.get("/workspaces").status_code == 200
    report = requests.get(f"{sandbox.url}/_sandbox/outage").json()
    assert report["active"] is False and report["listening"] is True and report["current"] is None
    (outage,) = report["history"]
    assert outage["connections_cut"] >= 1 and outage["rebind_error"] is None
    assert 0.6 <= outage["ended_at"] - outage["started_at"] < 2.0
    assert sandbox.stats.total == before + 1  # refused requests never reach the server


def test_refuse_over_http_answers_first_then_refuses(sandbox: SandboxServer) -> None:
    response = requests.post(f"{sandbox.url}/_sandbox/outage", json={"seconds": 0.8, "mode": "refuse"}, timeout=5)
    assert response.status_code == 201 and response.json()["outage"]["mode"] == "refuse"
    time.sleep(0.4)  # the socket closes a moment after the answer
    assert refused(sandbox)
    assert sandbox.outages.wait_over(timeout=5)
    assert requests.get(f"{sandbox.url}/_sandbox/health", timeout=5).status_code == 200


def test_drop_one_platform_only(client: AnaplanClient, sandbox: SandboxServer) -> None:
    response = requests.post(
        f"{sandbox.url}/_sandbox/outage", json={"seconds": 30, "mode": "drop", "platform": "anaplan"}, timeout=5
    )
    assert response.status_code == 201
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            client.get("/workspaces")
    # another platform's paths, and the control API, are served as usual
    assert requests.get(f"{sandbox.url}{JSS_HEALTH}", timeout=5).status_code == 401
    report = requests.get(f"{sandbox.url}/_sandbox/outage", timeout=5).json()
    assert report["active"] is True and report["current"]["dropped"] == 2 and report["current"]["platform"] == "anaplan"
    assert sandbox.stats.statuses[0] == 2  # dropped requests are counted, like dropped faults
    ended = requests.delete(f"{sandbox.url}/_sandbox/outage", timeout=5).json()["ended"]
    assert ended["dropped"] == 2 and ended["ended_at"] is not None
    assert client.get("/workspaces").status_code == 200
    assert requests.delete(f"{sandbox.url}/_sandbox/outage", timeout=5).json() == {"ended": None}


def test_503_in_the_platforms_shape_without_retry_after(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.outage(0.5, "503")
    response = client.get("/workspaces")
    assert response.status_code == 503 and "Retry-After" not in response.headers
    assert OUTAGE_MESSAGE in response.text
    token = requests.post(f"{sandbox.url}/anaplan/auth/token/authenticate", auth=("demo@example.com", "demo"))
    assert token.status_code == 503  # login endpoints are down too
    assert sandbox.outages.wait_over(timeout=5)
    assert client.get("/workspaces").status_code == 200
    (outage,) = sandbox.outages.to_dict()["history"]
    assert outage["answered_503"] == 2 and sandbox.stats.statuses[503] == 2


def test_reset_ends_a_refuse_outage_at_once(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.outage(600, "refuse")
    assert refused(sandbox)
    started = time.monotonic()
    sandbox.reset()
    assert time.monotonic() - started < 2 and not refused(sandbox)
    assert sandbox.outages.to_dict() == {
        "active": False,
        "listening": True,
        "current": None,
        "history": [],
        "totals": {"outages": 0, "dropped": 0, "answered_503": 0, "connections_cut": 0},
    }
    client.login()
    assert client.get("/workspaces").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"seconds": 5, "mode": "flaky"}, 400, "mode must be one of refuse, drop, 503"),
        ({"seconds": 5, "mode": "refuse", "platform": "anaplan"}, 400, 'use mode "drop" or "503"'),
        ({"seconds": 5, "mode": "drop", "platform": "sap"}, 400, "platform must be one of anaplan"),
        ({"seconds": 0}, 400, "seconds must be above 0"),
        ({"seconds": True}, 400, "seconds must be a number"),
        ({"seconds": "5"}, 400, "seconds must be a number"),
        ({"mode": "drop"}, 400, '{"seconds": 60}'),
        ({"seconds": 5, "until": 3}, 400, "unknown outage keys: until"),
        ([1], 400, "send {"),
    ],
)
def test_bad_outage_requests_name_the_fix(sandbox: SandboxServer, body: object, status: int, fragment: str) -> None:
    response = requests.post(f"{sandbox.url}/_sandbox/outage", json=body, timeout=5)
    assert response.status_code == status and fragment in response.json()["error"]
    assert sandbox.outages.active is None


def test_one_outage_at_a_time(sandbox: SandboxServer) -> None:
    sandbox.outage(30, "503", "sap_job_scheduling")
    response = requests.post(f"{sandbox.url}/_sandbox/outage", json={"seconds": 5, "mode": "drop"}, timeout=5)
    assert response.status_code == 409 and "already in progress" in response.json()["error"]
    with pytest.raises(RuntimeError, match="already in progress"):
        sandbox.outage(5, "drop")


def test_stop_during_a_refuse_outage() -> None:
    server = SandboxServer(time_scale=0.02).start()
    server.outage(600, "refuse")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    assert server.outages.active is None and server.outages.listening is False
    with pytest.raises(RuntimeError, match="stopped"):
        server.outage(1, "drop")
