"""The sandbox's per-platform rate limit: sliding window, 429 with Retry-After, counters, control API."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.sandbox.rate_limit import RateLimiter, retry_after_header

from .conftest import AnaplanClient


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_refuses_beyond_the_limit_and_frees_slots_as_they_age() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.set("anaplan", 3)
    assert [limiter.admit("anaplan") for _ in range(3)] == [None, None, None]
    clock.now += 20
    assert limiter.admit("anaplan") == pytest.approx(40.0)  # the first request leaves the window at +60
    clock.now += 40  # exactly 60 s after the first three: they have all left the window
    assert limiter.admit("anaplan") is None
    counters = limiter.to_dict()["anaplan"]
    assert counters["accepted"] == 4 and counters["limited"] == 1
    assert counters["max_accepted_in_window"] == 3
    assert counters["max_offered_in_window"] == 4
    assert counters["accepted_per_minute"] == {"0": 3, "1": 1}


def test_other_platforms_and_removed_limits_are_not_limited() -> None:
    limiter = RateLimiter(clock=FakeClock())
    limiter.set("anaplan", 1)
    assert limiter.admit("anaplan") is None
    assert limiter.admit("sap_job_scheduling") is None
    assert limiter.admit(None) is None
    assert limiter.admit("anaplan") is not None
    limiter.set("anaplan", 0)
    assert limiter.admit("anaplan") is None and limiter.to_dict() == {}


@pytest.mark.parametrize("per_minute", [-1, 1.5, None, "600", True])
def test_invalid_limits_are_refused(per_minute: object) -> None:
    with pytest.raises(ValueError, match="per_minute"):
        RateLimiter().set("anaplan", per_minute)  # type: ignore[arg-type]


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.0) == "1"
    assert retry_after_header(12.2) == "13"


def test_server_answers_429_with_retry_after_beyond_the_limit(client: AnaplanClient, sandbox: SandboxServer) -> None:
    sandbox.rate_limits.set("anaplan", 3)
    statuses = [client.session.get(f"{client.api}/workspaces").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    refused = client.session.get(f"{client.api}/workspaces")
    assert refused.status_code == 429
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
    assert sandbox.stats.statuses[429] == 3
    # Logging in is never limited (the token endpoint is not the tenant's API).
    assert client.session.post(f"{client.auth_url}/token/authenticate", auth=("demo@example.com", "demo")).ok
    stats = requests.get(f"{sandbox.url}/_sandbox/stats", params={"log": "0"}, timeout=10).json()
    assert stats["rate_limits"]["anaplan"]["accepted"] == 3
    assert stats["rate_limits"]["anaplan"]["limited"] == 3
    assert stats["rate_limits"]["anaplan"]["max_offered_in_window"] == 6


def test_control_api_sets_lists_and_clears_limits(client: AnaplanClient, sandbox: SandboxServer) -> None:
    base = f"{sandbox.url}/_sandbox/rate_limit"
    answer = requests.post(base, json={"platform": "anaplan", "per_minute": 2}, timeout=10)
    assert answer.status_code == 201
    assert answer.json()["rate_limits"]["anaplan"]["per_minute"] == 2
    assert [client.session.get(f"{client.api}/workspaces").status_code for _ in range(3)] == [200, 200, 429]
    assert requests.get(base, timeout=10).json()["rate_limits"]["anaplan"]["limited"] == 1
    assert requests.delete(base, timeout=10).status_code == 204
    assert client.session.get(f"{client.api}/workspaces").status_code == 200
    requests.post(base, json={"platform": "anaplan", "per_minute": 1}, timeout=10)
    requests.post(f"{sandbox.url}/_sandbox/reset", timeout=10)
    assert requests.get(base, timeout=10).json() == {"rate_limits": {}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"platform": "nope", "per_minute": 5}, "platform must be one of"),
        ({"platform": "anaplan", "per_minute": -5}, "per_minute"),
        ({"platform": "anaplan", "per_minute": 5, "burst": 1}, "unknown rate limit keys: burst"),
        ({"platform": "anaplan", "per_minute": 5, "window_seconds": 0}, "window_seconds"),
        ([1], "per_minute"),
    ],
)
def test_control_api_rejects_bad_limits(sandbox: SandboxServer, body: object, message: str) -> None:
    answer = requests.post(f"{sandbox.url}/_sandbox/rate_limit", json=body, timeout=10)
    assert answer.status_code == 400 and message in answer.json()["error"]
