"""One connection lookup shared by the triggers that start together on one event loop.

A triggerer that starts (or resumes, after a restart) thousands of waits looks up the same few
connections thousands of times; each lookup goes through Airflow's secrets backends and secret
masking, about half a millisecond of CPU on the loop, more than a poll costs. Triggers that start
within :data:`LOOKUP_REUSE_SECONDS` of one another on the same loop share one lookup, and
concurrent lookups of one connection wait on the same request instead of each making their own.

What this changes for users: none of the triggers sees a connection edited less than a few seconds
before it started. A trigger never sees an edit made after it started anyway (its hook keeps the
connection it began with), so this only widens that by a few seconds. Failed lookups are not kept.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

from airflow_provider_sapplan._compat import get_async_connection

LOOKUP_REUSE_SECONDS = 5.0
"""How long one lookup of a connection serves the triggers starting on the same loop."""

_clock = time.monotonic

_Entry = tuple[float, "asyncio.Future[Any]"]
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Entry]] = weakref.WeakKeyDictionary()


async def shared_connection_lookup(conn_id: str) -> Any:
    """The Airflow connection ``conn_id``, looked up at most once per few seconds on this loop."""
    loop = asyncio.get_running_loop()
    entries = _by_loop.setdefault(loop, {})
    now = _clock()
    entry = entries.get(conn_id)
    if entry is None or entry[0] <= now:
        _forget_expired(entries, now)
        task = loop.create_task(get_async_connection(conn_id))
        task.add_done_callback(_consume_outcome)
        entry = (now + LOOKUP_REUSE_SECONDS, task)
        entries[conn_id] = entry
    lookup = entry[1]
    if lookup.done() and not lookup.cancelled() and lookup.exception() is None:
        return lookup.result()
    try:
        # Shielded: one waiter being cancelled must not cancel the lookup the others wait on.
        return await asyncio.shield(lookup)
    except asyncio.CancelledError:
        raise
    except BaseException:
        if entries.get(conn_id) is entry:
            del entries[conn_id]
        raise


def _forget_expired(entries: dict[str, _Entry], now: float) -> None:
    for conn_id in [key for key, (expires, _) in entries.items() if expires <= now]:
        del entries[conn_id]


def _consume_outcome(lookup: asyncio.Future[Any]) -> None:
    """Mark a failure as seen even when every waiter was cancelled (no "never retrieved" warning)."""
    if not lookup.cancelled():
        lookup.exception()
