"""The per-tenant request budget: even spacing, a bounded burst, shared back-off, one budget per tenant."""

from __future__ import annotations

import bisect
import threading
from typing import Any

import pytest

from airflow_provider_sapplan.core.rate_budget import BudgetRegistry, RequestBudget, tenant_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def send_times(budget: RequestBudget, clock: Clock, count: int) -> list[float]:
    """When each of ``count`` requests issued at the current time would go out."""
    return [clock.now + budget.reserve() for _ in range(count)]


def test_a_burst_then_even_spacing() -> None:
    clock = Clock()
    budget = RequestBudget(600, burst=3, clock=clock)
    times = send_times(budget, clock, 6)
    assert times[:3] == [100.0, 100.0, 100.0]
    assert times[3:] == pytest.approx([100.1, 100.2, 100.3])


def window_counts(times: list[float]) -> list[int]:
    """Requests in the sliding 60 s window that starts at each request (a server's count)."""
    ordered = sorted(times)
    return [bisect.bisect_left(ordered, start + 60) - i for i, start in enumerate(ordered)]


def test_never_more_than_the_rate_in_any_sliding_minute_burst_included() -> None:
    clock = Clock()
    budget = RequestBudget(600, burst=5, clock=clock)
    times = send_times(budget, clock, 2000)
    assert times[:5] == [100.0] * 5  # the burst still goes out at once
    assert max(window_counts(times)) == 600  # a strict sliding-window server would answer none of them 429
    late = [t + (0.9 if i % 1200 == 7 else 0.0) for i, t in enumerate(times)]  # one in 1200 arrives 0.9 s late
    assert max(window_counts(late)) == 600


def test_a_rested_budget_bursts_again_without_exceeding_the_minute() -> None:
    clock = Clock()
    budget = RequestBudget(60, burst=5, clock=clock)
    times = send_times(budget, clock, 100)
    clock.now = times[-1] + 0.5  # barely rested: the burst slots are back, the window is still full
    times += send_times(budget, clock, 100)
    clock.now = times[-1] + 120  # fully rested
    times += send_times(budget, clock, 100)
    assert max(window_counts(times)) <= 60


def test_idle_time_does_not_bank_more_than_the_burst() -> None:
    clock = Clock()
    budget = RequestBudget(60, burst=2, clock=clock)
    send_times(budget, clock, 1)
    clock.now += 3600
    times = send_times(budget, clock, 4)
    assert times == pytest.approx([3700.0, 3700.0, 3701.0, 3702.0])


def test_a_429_pushes_everyone_back() -> None:
    clock = Clock()
    budget = RequestBudget(600, burst=1, clock=clock)
    budget.reserve()
    budget.back_off(30)
    assert budget.reserve() == pytest.approx(30.0)


def test_threads_share_slots_without_duplicates() -> None:
    budget = RequestBudget(6000, burst=1)
    delays: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            delay = budget.reserve()
            with lock:
                delays.append(delay)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.reserved == 400
    assert max(delays) == pytest.approx(399 * 0.01, abs=0.5)


def test_registry_one_budget_per_tenant() -> None:
    registry = BudgetRegistry()
    a = registry.for_tenant("Anaplan", "https://api.anaplan.com/2/0/workspaces", 600)
    assert registry.for_tenant("Anaplan", "https://API.anaplan.com/2/0/models", 600) is a
    assert registry.for_tenant("Anaplan", "https://other.example.com/2/0", 600) is not a
    lower = registry.for_tenant("Anaplan", "https://api.anaplan.com/2/0", 300)
    assert lower.per_minute == 300 and registry.for_tenant("Anaplan", "https://api.anaplan.com", 600) is lower
    assert tenant_of("http://127.0.0.1:8080/anaplan/api") == "http://127.0.0.1:8080"


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        RequestBudget(0)


# -- through the HTTP core ---------------------------------------------------------------------


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Sleeps of the sync client, recorded; the budget's clock advances with them."""
    from airflow_provider_sapplan.core.rate_budget import BUDGETS

    slept: list[float] = []
    monkeypatch.setattr("airflow_provider_sapplan.core.http.time.sleep", slept.append)
    monkeypatch.setattr(BUDGETS, "clock", lambda: sum(slept))
    return slept


def _anaplan(monkeypatch: pytest.MonkeyPatch, requests_mock: Any, rate: Any) -> Any:
    from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
    from tests.conftest import ANAPLAN_API, ANAPLAN_AUTH, set_connection
    from tests.unit.test_anaplan_hook import token_body

    extra = {"auth_url": ANAPLAN_AUTH, "api_url": ANAPLAN_API}
    if rate is not None:
        extra["requests_per_minute"] = rate
    set_connection(monkeypatch, "paced", conn_type="anaplan", login="u@example.com", password="pw-12345", extra=extra)
    requests_mock.post(f"{ANAPLAN_AUTH}/token/authenticate", json=token_body())
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"workspaces": []})
    return AnaplanHook("paced")


def test_anaplan_requests_are_spaced_by_the_connection_budget(
    monkeypatch: pytest.MonkeyPatch, requests_mock: Any, paced: list[float]
) -> None:
    hook = _anaplan(monkeypatch, requests_mock, 60)
    for _ in range(8):
        hook.list_workspaces()
    # 5 go out at once (the burst), then one a second: 60 a minute.
    assert paced == pytest.approx([1.0, 1.0, 1.0])


def test_anaplan_default_budget_is_600_a_minute(
    monkeypatch: pytest.MonkeyPatch, requests_mock: Any, paced: list[float]
) -> None:
    hook = _anaplan(monkeypatch, requests_mock, None)
    for _ in range(7):
        hook.list_workspaces()
    assert paced == pytest.approx([0.1, 0.1])


def test_budget_zero_turns_it_off(monkeypatch: pytest.MonkeyPatch, requests_mock: Any, paced: list[float]) -> None:
    hook = _anaplan(monkeypatch, requests_mock, 0)
    for _ in range(20):
        hook.list_workspaces()
    assert paced == []


def test_a_429_holds_back_every_client_of_the_tenant(
    monkeypatch: pytest.MonkeyPatch, requests_mock: Any, paced: list[float]
) -> None:
    from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
    from tests.conftest import ANAPLAN_API

    hook = _anaplan(monkeypatch, requests_mock, 600)
    requests_mock.get(
        f"{ANAPLAN_API}/workspaces", [{"status_code": 429, "headers": {"Retry-After": "30"}}, {"json": {}}]
    )
    hook.list_workspaces()
    other = AnaplanHook("paced")  # another task of the same tenant in this process
    other.list_workspaces()
    # The retry waited out Retry-After; the other client then only keeps the budget's spacing (0.1 s),
    # instead of both bursting at the tenant the moment the limit lifts.
    assert paced[0] == 30.0 and sum(paced[1:]) == pytest.approx(0.1)


@pytest.mark.parametrize("rate", ["fast", -1, True])
def test_bad_budget_names_the_field(monkeypatch: pytest.MonkeyPatch, requests_mock: Any, rate: Any) -> None:
    from airflow_provider_sapplan.exceptions import ConnectionConfigError

    with pytest.raises(ConnectionConfigError, match="requests_per_minute"):
        _anaplan(monkeypatch, requests_mock, rate).get_conn()
    assert requests_mock.call_count == 0
