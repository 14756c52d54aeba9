"""Triggers starting together on one loop share one connection lookup (core/connection_lookup.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_sapplan.core import connection_lookup
from airflow_provider_sapplan.core.connection_lookup import shared_connection_lookup


class CountingLookup:
    """Stands in for Airflow's lookup: counts calls, answers after a yield, can fail the first N."""

    def __init__(self, failures: int = 0, delay: float = 0.01) -> None:
        self.calls: list[str] = []
        self.failures = failures
        self.delay = delay

    async def __call__(self, conn_id: str) -> Any:
        self.calls.append(conn_id)
        await asyncio.sleep(self.delay)
        if len(self.calls) <= self.failures:
            raise RuntimeError(f"lookup of {conn_id} failed")
        return {"conn_id": conn_id, "lookup": len(self.calls)}


@pytest.fixture
def lookup(monkeypatch: pytest.MonkeyPatch) -> CountingLookup:
    counting = CountingLookup()
    monkeypatch.setattr(connection_lookup, "get_async_connection", counting)
    return counting


async def test_concurrent_lookups_of_one_connection_make_one_request(lookup: CountingLookup) -> None:
    results = await asyncio.gather(*(shared_connection_lookup("a") for _ in range(50)))
    assert lookup.calls == ["a"]
    assert all(result is results[0] for result in results)


async def test_each_connection_is_looked_up_on_its_own(lookup: CountingLookup) -> None:
    first, second = await asyncio.gather(shared_connection_lookup("a"), shared_connection_lookup("b"))
    assert sorted(lookup.calls) == ["a", "b"]
    assert (first["conn_id"], second["conn_id"]) == ("a", "b")


async def test_a_lookup_older_than_the_reuse_window_is_made_again(
    lookup: CountingLookup, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(connection_lookup, "_clock", lambda: now[0])
    first = await shared_connection_lookup("a")
    now[0] += connection_lookup.LOOKUP_REUSE_SECONDS - 0.1
    assert await shared_connection_lookup("a") is first
    now[0] += 0.2
    again = await shared_connection_lookup("a")
    assert again is not first
    assert lookup.calls == ["a", "a"]


async def test_a_failed_lookup_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = CountingLookup(failures=1)
    monkeypatch.setattr(connection_lookup, "get_async_connection", counting)
    with pytest.raises(RuntimeError, match="lookup of a failed"):
        await shared_connection_lookup("a")
    assert (await shared_connection_lookup("a"))["lookup"] == 2


async def test_a_cancelled_waiter_does_not_cancel_the_lookup_the_others_wait_on(lookup: CountingLookup) -> None:
    lookup.delay = 0.05
    cancelled = asyncio.ensure_future(shared_connection_lookup("a"))
    kept = asyncio.ensure_future(shared_connection_lookup("a"))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    assert (await kept)["conn_id"] == "a"
    assert cancelled.cancelled()
    assert lookup.calls == ["a"]


def test_separate_event_loops_do_not_share_lookups(lookup: CountingLookup) -> None:
    asyncio.run(shared_connection_lookup("a"))
    asyncio.run(shared_connection_lookup("a"))
    assert lookup.calls == ["a", "a"]


async def test_hooks_starting_together_share_one_airflow_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real hook and Airflow's own lookup: 20 hooks, one connection read."""
    from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook
    from example_dags.run_demo import sandbox_connections

    value = sandbox_connections("http://127.0.0.1:9")["sap_job_scheduling_default"]
    monkeypatch.setenv("AIRFLOW_CONN_JSS_SHARED", value if isinstance(value, str) else json.dumps(value))
    real = connection_lookup.get_async_connection
    calls: list[str] = []

    async def counted(conn_id: str) -> Any:
        calls.append(conn_id)
        return await real(conn_id)

    monkeypatch.setattr(connection_lookup, "get_async_connection", counted)
    hooks = [SapJobSchedulingHook("jss_shared") for _ in range(20)]
    clients = await asyncio.gather(*(hook.aget_client() for hook in hooks))
    assert calls == ["jss_shared"]
    assert len({id(client) for client in clients}) == 20, "each hook keeps its own client"
    for hook in hooks:
        await hook.aclose()
