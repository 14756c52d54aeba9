"""The per-tenant request budget: even spacing, a bounded burst, shared back-off, one budget per tenant."""

from __future__ import annotations

import threading

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


def test_never_more_than_the_rate_in_any_minute() -> None:
    clock = Clock()
    budget = RequestBudget(600, burst=5, clock=clock)
    times = send_times(budget, clock, 2000)
    window_counts = [sum(1 for t in times if start <= t < start + 60) for start in times[:1500]]
    assert max(window_counts) <= 600 + 5


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
