"""Trigger density benchmark: 1,000 AnaplanTaskTriggers in one event loop against 1,000 HttpSensorTriggers.

Why: a triggerer runs every deferred task of a deployment in one asyncio loop. The provider's
targets are a p99 event-loop lag under 100 ms with 1,000 waiting Anaplan tasks, and less CPU per
poll than Airflow's generic ``HttpSensorTrigger`` polling the same endpoint at the same rate.

What: the sandbox (its own process) gets 1,000 import tasks that stay IN_PROGRESS (``run_seconds``
set very long), started through the sync hook's ``run_action``. Then, each in a fresh process:

- ``anaplan``: 1,000 ``AnaplanTaskTrigger`` (poll_interval = max_poll_interval = 5 s, the
  provider's minimum), one per task;
- ``http``: 1,000 ``HttpSensorTrigger`` (poke_interval 5 s) on the same task endpoint, with an
  ``http`` connection to the sandbox and the ``AnaplanAuthToken`` header. That trigger fires on the
  first non-404 answer and keeps polling only on 404, so each one polls an unknown task id under
  the same import (the sandbox answers 404): a running task would fire it at once.

Both start their triggers evenly over one poll interval (as deferrals arrive in a real triggerer,
and so both make the same ~200 polls/s), run for ``--duration`` seconds, then are cancelled. Measured
per run: polls served (sandbox ``/_sandbox/stats`` deltas), client CPU time per 1,000 polls (also
net of the lag ticker's own cost), RSS increase per trigger, event-loop lag (a task sleeping 10 ms
records how late it wakes: p50/p99/max) next to the longest garbage-collection pause, TCP
connections opened (``create_connection`` calls counted by a patch), and sandbox CPU. A second
short run per trigger type measures the Python heap per trigger with ``tracemalloc`` (kept apart:
tracing slows everything down).

``--mix`` (issue 13, load): 5,000 waits spread evenly over the five platforms' triggers
(Anaplan task, Job Scheduling run log, Cloud Integration message, Analytics Cloud Multi Action, Data
Intelligence graph; see ``_mixed.py``), each on its own remote job that stays running, against
5,000 ``HttpSensorTrigger`` on the same sandbox at the same interval (20 s by default: 250 polls/s,
what two shared cores can serve with the sandbox on the same machine). It also reports polls per
second achieved against expected, CPU per poll in the steady state (after every trigger has
started), and the sockets the worker holds open (sampled every 2 s; the worker talks to the sandbox
alone, so that is its connections to the one host). ``--profile`` adds a cProfile run of the first
mode and writes its top entries next to the results.

Run from the repository root: ``python benchmarks/trigger_density.py`` (``--help`` for options).
Writes ``benchmarks/results/trigger_density.json`` (``--mix``: ``mixed_triggers.json``) and prints
a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import logging
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests
from _common import (
    IMPORT_ID,
    MODEL_ID,
    RESULTS_DIR,
    WORKSPACE_ID,
    Sandbox,
    current_rss,
    emit_result,
    load_spec,
    machine_info,
    markdown_table,
    percentile,
    run_worker,
    stats_delta,
    system_busy_seconds,
    wait_for_quiet,
    workdir,
    worker_env,
    write_results,
)

SCRIPT = Path(__file__).resolve()
TICK_SECONDS = 0.010
IDLE_SECONDS = 3.0
SETTLE_SECONDS = 2.0
TRACED_FIRST_POLLS_MAX_S = 120.0
TASK_ROUTE = "GET /anaplan/api/2/0/workspaces/{ws}/models/{model}/imports/{import}/tasks/{task}"
MODES = ("anaplan", "http")
MIX_MODES = ("mixed", "http")
LABELS = {
    "anaplan": "AnaplanTaskTrigger (provider)",
    "mixed": "Provider triggers, five platforms mixed",
    "http": "HttpSensorTrigger (apache-airflow-providers-http)",
    "http-quiet": "HttpSensorTrigger, its per-poll warning log disabled",
}

# ----------------------------------------------------------------------------------- worker side


class ConnectionCounter:
    """Counts TCP connections opened on any event loop by wrapping ``BaseEventLoop.create_connection``.

    aiohttp opens every connection through ``loop.create_connection`` (with a socket that
    aiohappyeyeballs connected), so one patch sees them all.
    """

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> None:
        original = asyncio.base_events.BaseEventLoop.create_connection
        counter = self

        async def create_connection(self: asyncio.AbstractEventLoop, *args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            return await original(self, *args, **kwargs)  # type: ignore[arg-type]

        asyncio.base_events.BaseEventLoop.create_connection = create_connection  # type: ignore[method-assign]


class GcPauses:
    """Records how long each garbage collection stops the interpreter (and so the event loop)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))
            self._started = None


def cpu_split() -> tuple[float, float]:
    """User and system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def ticker(lags: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """Sleep 10 ms at a time and record (when, how late) each wake-up is: the loop's responsiveness."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(TICK_SECONDS)
        now = loop.time()
        lags.append((now, max(0.0, now - before - TICK_SECONDS)))


async def drive(trigger: Any, outcomes: collections.Counter[str]) -> None:
    """Run one trigger the way the triggerer does: iterate ``run()`` until its first event."""
    try:
        async for event in trigger.run():
            payload = event.payload
            status = payload.get("status") if isinstance(payload, dict) else payload
            outcomes[f"event:{status}"] += 1
            return
        outcomes["ended without event"] += 1
    except asyncio.CancelledError:
        raise
    except Exception as err:
        outcomes[f"raised:{type(err).__name__}"] += 1


def trigger_factory(spec: dict[str, Any]) -> Callable[[int], Any]:
    """Build the i-th trigger of the run (imports Airflow and the trigger classes)."""
    interval = float(spec["poll_interval"])
    if spec["mode"] == "mixed":
        import _mixed

        return _mixed.trigger_factory(spec["refs"], interval)
    if spec["mode"] == "anaplan":
        from airflow_provider_sapplan.triggers.anaplan import AnaplanTaskTrigger

        task_ids: list[str] = spec["task_ids"]

        def make_anaplan(index: int) -> Any:
            return AnaplanTaskTrigger(
                conn_id="anaplan_default",
                ref={
                    "workspace_id": WORKSPACE_ID,
                    "model_id": MODEL_ID,
                    "action_type": "imports",
                    "action_id": IMPORT_ID,
                    "task_id": task_ids[index % len(task_ids)],
                },
                poll_interval=interval,
                max_poll_interval=interval,
            )

        return make_anaplan

    from airflow.providers.http.triggers.http import HttpSensorTrigger

    base = f"/anaplan/api/2/0/workspaces/{WORKSPACE_ID}/models/{MODEL_ID}/imports/{IMPORT_ID}/tasks"
    headers = {"Authorization": f"AnaplanAuthToken {spec['token']}", "Accept": "application/json"}

    def make_http(index: int) -> Any:
        return HttpSensorTrigger(
            endpoint=f"{base}/{0xDEAD00000000 + index:032X}",  # no such task: the sandbox answers 404
            http_conn_id="http_sandbox",
            method="GET",
            headers=headers,
            poke_interval=interval,
        )

    return make_http


def fetch_stats(url: str) -> dict[str, Any]:
    """The sandbox's request counters (run in a thread: never block the measured loop)."""
    response = requests.get(f"{url}/_sandbox/stats", params={"log": "0"}, timeout=30)
    response.raise_for_status()
    return dict(response.json())


def sandbox_cpu(pid: int) -> float:
    """CPU seconds the sandbox process has used so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def open_tcp_sockets() -> int:
    """Established TCP connections of this process (the pool kept open between polls)."""
    import psutil

    return sum(1 for c in psutil.Process().net_connections(kind="tcp") if c.status == "ESTABLISHED")


def sockets_by_peer() -> dict[str, int]:
    """This process's TCP connections per remote ``host:port`` and state (once, after the CPU window)."""
    import psutil

    counts: collections.Counter[str] = collections.Counter()
    for conn in psutil.Process().net_connections(kind="tcp"):
        if conn.raddr:
            counts[f"{conn.raddr.ip}:{conn.raddr.port} {conn.status}"] += 1
    return dict(counts)


def socket_fds() -> int:
    """Sockets this process holds open (cheap: fd links only). The worker talks to the sandbox alone,
    so this is its connections to the sandbox's host (plus the stats client's one)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


async def socket_sampler(samples: list[int], stop: asyncio.Event, every: float = 2.0) -> None:
    """Count open sockets every ``every`` seconds (the connections held per host over the window)."""
    while not stop.is_set():
        samples.append(socket_fds())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


def polls_of(mode: str, before: dict[str, Any], after: dict[str, Any]) -> int:
    """Polls the sandbox answered between two stats snapshots (the mixed mode: every platform's poll GETs)."""
    delta = stats_delta(before, after)["requests"]
    if mode == "mixed":
        import _mixed

        return sum(count for route, count in delta.items() if _mixed.is_poll_route(route))
    return int(delta.get(TASK_ROUTE, 0))


async def sleep_until(deadline: float) -> None:
    """Sleep until the loop clock reaches ``deadline`` (no-op if it already passed)."""
    loop = asyncio.get_running_loop()
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def measure(spec: dict[str, Any], connections: ConnectionCounter) -> dict[str, Any]:
    """Start the triggers staggered over one poll interval, watch for the duration, cancel them."""
    loop = asyncio.get_running_loop()
    count = int(spec["triggers"])
    stagger = float(spec["poll_interval"])
    traced = bool(spec.get("tracemalloc"))
    duration = stagger + SETTLE_SECONDS if traced else float(spec["duration"])
    make = trigger_factory(spec)
    make(0)  # import and warm up everything a trigger touches before the baseline is taken

    lags: list[tuple[float, float]] = []
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(lags, stop))
    await asyncio.sleep(0.5)
    idle_cpu_start = time.process_time()
    idle_start = loop.time()
    await asyncio.sleep(IDLE_SECONDS)
    idle_cpu_rate = (time.process_time() - idle_cpu_start) / (loop.time() - idle_start)
    idle_lags = [lag for _, lag in lags]

    socket_samples: list[int] = []
    sampler_stop = asyncio.Event()
    stats_before = await asyncio.to_thread(fetch_stats, spec["url"])
    server_cpu_before = sandbox_cpu(spec["sandbox_pid"])
    gc.collect()
    rss_before = current_rss()
    await asyncio.sleep(3 * TICK_SECONDS)  # the ticker records the collection's pause now, before the window
    if traced:
        tracemalloc.start()
    connections_before = connections.count
    lags.clear()
    outcomes: collections.Counter[str] = collections.Counter()
    tasks: list[asyncio.Task[None]] = []
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    sampler = asyncio.create_task(socket_sampler(socket_samples, sampler_stop))
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    user_start, sys_start = cpu_split()
    busy_start = system_busy_seconds()
    cpu_start = time.process_time()
    start = loop.time()
    for index in range(count):
        tasks.append(asyncio.create_task(drive(make(index), outcomes)))
        await sleep_until(start + (index + 1) * stagger / count)
    await sleep_until(start + stagger + SETTLE_SECONDS)  # every trigger has made its first poll
    if traced:  # tracing slows the loop down: wait (bounded) until the server saw one poll per trigger
        give_up = loop.time() + TRACED_FIRST_POLLS_MAX_S
        while (
            loop.time() < give_up
            and polls_of(spec["mode"], stats_before, await asyncio.to_thread(fetch_stats, spec["url"])) < count
        ):
            await asyncio.sleep(1.0)
    rss_started = current_rss()
    steady_cpu_start = time.process_time()
    steady_start = loop.time()
    stats_steady = await asyncio.to_thread(fetch_stats, spec["url"])
    traced_bytes = tracemalloc.get_traced_memory()[0] if traced else None
    if traced:
        tracemalloc.stop()
    await sleep_until(start + duration)
    if profiler is not None:
        profiler.disable()
    cpu = time.process_time() - cpu_start
    steady_cpu = time.process_time() - steady_cpu_start
    steady_window = loop.time() - steady_start
    busy = system_busy_seconds() - busy_start
    user_end, sys_end = cpu_split()
    gc.callbacks.remove(gc_pauses)
    window = loop.time() - start
    window_lags = [lag for _, lag in lags]
    worst_at, worst = max(lags, key=lambda item: item[1], default=(start, 0.0))
    connections_opened = connections.count - connections_before
    sampler_stop.set()
    await sampler
    open_sockets = open_tcp_sockets()
    peers = sockets_by_peer()
    alive = sum(1 for task in tasks if not task.done())
    stats_after = await asyncio.to_thread(fetch_stats, spec["url"])
    server_cpu = sandbox_cpu(spec["sandbox_pid"]) - server_cpu_before

    for task in tasks:
        task.cancel()
    cancel_start = loop.time()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=60)
    cancel_seconds = loop.time() - cancel_start
    stop.set()
    await tick
    if spec["mode"] in ("anaplan", "mixed"):
        from airflow_provider_sapplan.core.async_http import close_shared_session

        await close_shared_session()

    delta = stats_delta(stats_before, stats_after)
    polls = polls_of(spec["mode"], stats_before, stats_after)
    steady_polls = polls_of(spec["mode"], stats_steady, stats_after)
    requests_served = stats_after["total"] - stats_before["total"]
    net_cpu = max(0.0, cpu - idle_cpu_rate * window)
    profile = profile_report(profiler, spec["profile"], polls) if profiler is not None else None
    return {
        "profile": profile,
        "polls_expected_per_s": count / stagger,
        "steady_window_s": steady_window,
        "steady_polls": steady_polls,
        "steady_polls_per_s": steady_polls / steady_window if steady_window else None,
        "steady_cpu_s": steady_cpu,
        "steady_cpu_ms_per_1000_polls": steady_cpu / steady_polls * 1e6 if steady_polls else None,
        "routes": delta["requests"],
        "statuses": delta["statuses"],
        "auth_requests": {
            key: value - stats_before.get("auth_requests", {}).get(key, 0)
            for key, value in stats_after.get("auth_requests", {}).items()
        },
        "sockets_max": max(socket_samples, default=0),
        "sockets_median": percentile(socket_samples, 0.5),
        "sockets_by_peer_end": peers,
        "mode": spec["mode"],
        "traced": traced,
        "triggers": count,
        "window_s": window,
        "polls": polls,
        "requests_served": requests_served,
        "polls_per_s": polls / window,
        "cpu_s": cpu,
        "cpu_user_s": user_end - user_start,
        "cpu_sys_s": sys_end - sys_start,
        "idle_cpu_per_s": idle_cpu_rate,
        "cpu_ms_per_1000_polls": cpu / polls * 1e6 if polls else None,
        "net_cpu_ms_per_1000_polls": net_cpu / polls * 1e6 if polls else None,
        "rss_before": rss_before,
        "rss_started": rss_started,
        "rss_per_trigger": (rss_started - rss_before) / count,
        "traced_bytes": traced_bytes,
        "traced_per_trigger": traced_bytes / count if traced_bytes is not None else None,
        "lag_samples": len(window_lags),
        "lag_p50_ms": percentile(window_lags, 0.50) * 1000,
        "lag_p99_ms": percentile(window_lags, 0.99) * 1000,
        "lag_max_ms": worst * 1000,
        "lag_max_at_s": worst_at - start,
        "lags_over_100ms": sum(1 for lag in window_lags if lag > 0.1),
        "idle_lag_p99_ms": percentile(idle_lags, 0.99) * 1000,
        "gc_collections": collections.Counter(str(gen) for gen, _ in gc_pauses.pauses),
        "gc_max_pause_ms": max((pause for _, pause in gc_pauses.pauses), default=0.0) * 1000,
        "connections_opened": connections_opened,
        "open_sockets_end": open_sockets,
        "alive_at_end": alive,
        "outcomes": dict(outcomes),
        "cancel_s": cancel_seconds,
        "sandbox_cpu_s": server_cpu,
        "other_cpu_s": max(0.0, busy - cpu - server_cpu),
    }


def profile_report(profiler: Any, path: str, polls: int, top: int = 40) -> dict[str, Any]:
    """The profile's top entries (own time and cumulative), per poll; the raw stats go to ``path``."""
    import io
    import pstats

    profiler.dump_stats(path)
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, func), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        short = filename.split("site-packages/")[-1].split("wt-load/")[-1]
        rows.append(
            {
                "function": f"{short}:{line}({func})",
                "calls": calls,
                "own_us_per_poll": own / polls * 1e6 if polls else None,
                "cum_us_per_poll": cumulative / polls * 1e6 if polls else None,
                "ours": "airflow_provider_sapplan" in filename,
            }
        )
    by_own = sorted(rows, key=lambda r: r["own_us_per_poll"] or 0, reverse=True)[:top]
    ours = sorted((r for r in rows if r["ours"]), key=lambda r: r["cum_us_per_poll"] or 0, reverse=True)[:top]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats("airflow_provider_sapplan", top)
    return {"polls": polls, "top_own": by_own, "top_ours_cumulative": ours, "text": text.getvalue()}


def worker(spec: dict[str, Any]) -> None:
    """One measured run in this (fresh) process."""
    if spec["mode"] == "http-quiet":
        logging.getLogger("airflow.providers.http").setLevel(logging.ERROR)
    connections = ConnectionCounter()
    connections.install()
    trigger_type = "http" if spec["mode"] == "http-quiet" else spec["mode"]
    result = asyncio.run(measure({**spec, "mode": trigger_type}, connections))
    result["mode"] = spec["mode"]
    emit_result(result)


# ----------------------------------------------------------------------------------- parent side


def start_tasks(sandbox: Sandbox, count: int, budget_s: float) -> tuple[list[str], float]:
    """Start up to ``count`` import tasks that stay IN_PROGRESS, through the provider's sync hook.

    Returns the task ids and the seconds spent starting them; triggers reuse ids round-robin if
    the budget ran out first.
    """
    from airflow_provider_sapplan.hooks.anaplan import AnaplanHook

    sandbox.configure_action(IMPORT_ID, queue_seconds=0, run_seconds=1_000_000)
    hook = AnaplanHook("anaplan_default")
    hook.list_imports()  # connection lookup and login, outside the timing
    ids: list[str] = []
    started = time.monotonic()
    while len(ids) < count and time.monotonic() < started + budget_s:
        ids.append(str(hook.run_action("import", IMPORT_ID)["taskId"]))
    elapsed = time.monotonic() - started
    hook.get_conn().close()
    return ids, elapsed


def run_all(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    """Sandbox, tasks, token, then every measured run in its own process."""
    runs: list[dict[str, Any]] = []
    with Sandbox(base / "sandbox-data", base / "sandbox.log") as sandbox:
        port = sandbox.url.rsplit(":", 1)[1]
        http_conn = {"conn_type": "http", "host": "127.0.0.1", "port": int(port), "schema": "http"}
        extra = {"AIRFLOW_CONN_HTTP_SANDBOX": json.dumps(http_conn)}
        if args.mix:
            import _mixed

            mixed_conns = _mixed.connections(sandbox.url)
            extra.update({f"AIRFLOW_CONN_{k.upper()}": json.dumps(v) for k, v in mixed_conns.items()})
        env = worker_env(sandbox.url, base, extra)
        os.environ.update({k: v for k, v in env.items() if k == "AIRFLOW_HOME" or k.startswith("AIRFLOW_CONN_")})
        refs: dict[str, list[dict[str, Any]]] = {}
        if args.mix:
            started = time.monotonic()
            refs, per_platform = _mixed.start_jobs(sandbox, args.triggers)
            create_seconds = time.monotonic() - started
            task_ids = [ref["task_id"] for ref in refs["anaplan"]]
            print(
                f"Started {sum(len(r) for r in refs.values())} jobs in {create_seconds:.1f} s "
                + ", ".join(f"{name} {len(refs[name])} in {per_platform[name]:.1f} s" for name in refs),
                flush=True,
            )
        else:
            task_ids, create_seconds = start_tasks(sandbox, args.triggers, args.task_budget)
            print(f"Started {len(task_ids)} import tasks in {create_seconds:.1f} s", flush=True)
        token = sandbox.token()
        common = {
            "url": sandbox.url,
            "sandbox_pid": sandbox.pid,
            "triggers": args.triggers,
            "poll_interval": args.poll_interval,
            "duration": args.duration,
            "task_ids": task_ids,
            "refs": refs,
            "token": token,
        }
        plan: list[tuple[str, bool, bool]] = [(mode, False, False) for mode in args.modes]
        if args.tracemalloc:
            plan += [(mode, True, False) for mode in args.modes]
        if args.profile:
            plan.append((args.modes[0], False, True))
        for number, (mode, traced, profiled) in enumerate(plan, start=1):
            name = f"{mode}{' traced' if traced else ''}{' profiled' if profiled else ''}"
            profile_path = str(args.output.with_suffix(f".{mode}.pstats")) if profiled else None
            spec = {**common, "mode": mode, "tracemalloc": traced, "profile": profile_path, "name": name}
            timeout = args.duration + 180
            quiet = wait_for_quiet(args.quiet_wait)
            result = run_worker(SCRIPT, spec, env, base / f"worker-{number}-{spec['name']}.log", timeout)
            result["machine_before"] = quiet
            result["profiled"] = profiled
            runs.append(result)
            if profiled:
                print(f"[{number}] {mode:<10} profiled: {args.output.with_suffix(f'.{mode}.profile.txt')}", flush=True)
                args.output.with_suffix(f".{mode}.profile.txt").write_text(result["profile"]["text"])
            elif traced:
                print(
                    f"[{number}] {mode:<10} tracemalloc: {result['traced_per_trigger'] / 1024:.1f} KiB/trigger",
                    flush=True,
                )
            else:
                print(
                    f"[{number}] {mode:<10} polls {result['polls']} ({result['polls_per_s']:.0f}/s)  "
                    f"cpu {result['cpu_s']:.2f} s = {result['cpu_ms_per_1000_polls']:.0f} ms/1000 polls "
                    f"(steady {result['steady_cpu_ms_per_1000_polls']:.0f})  "
                    f"lag p50 {result['lag_p50_ms']:.1f} ms p99 {result['lag_p99_ms']:.1f} ms  "
                    f"conns {result['connections_opened']} (max open {result['sockets_max']})  "
                    f"alive {result['alive_at_end']}  {result['outcomes']}  neighbours {quiet['other_load_cores']}",
                    flush=True,
                )
    return {"tasks_started": len(task_ids), "task_start_s": create_seconds, "runs": runs}


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per trigger type: the main run's figures plus the traced run's heap per trigger."""
    rows = []
    traced = {r["mode"]: r for r in runs if r["traced"]}
    for run in runs:
        if run["traced"] or run.get("profiled"):
            continue
        row = dict(run)
        extra = traced.get(run["mode"])
        row["traced_per_trigger"] = extra["traced_per_trigger"] if extra else None
        rows.append(row)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The Markdown table printed at the end and pasted into docs/BENCHMARKS.md."""
    headers = [
        "Trigger",
        "Alive at end",
        "Polls (server)",
        "Polls/s (expected)",
        "Client CPU s",
        "CPU ms / 1000 polls",
        "same, net of ticker",
        "same, steady state",
        "RSS / trigger KiB",
        "Heap / trigger KiB",
        "Lag p50 ms",
        "Lag p99 ms",
        "Lag max ms",
        "Longest GC pause ms",
        "TCP conns opened",
        "Max sockets open",
        "Sandbox CPU s",
        "Other CPU s",
    ]

    def num(value: float | None, digits: int = 1) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    table = [
        [
            LABELS.get(row["mode"], row["mode"]),
            f"{row['alive_at_end']}/{row['triggers']}",
            str(row["polls"]),
            f"{row['polls_per_s']:.1f} ({row.get('polls_expected_per_s', 0):.0f})",
            num(row["cpu_s"], 2),
            num(row["cpu_ms_per_1000_polls"], 0),
            num(row["net_cpu_ms_per_1000_polls"], 0),
            num(row.get("steady_cpu_ms_per_1000_polls"), 0),
            num(row["rss_per_trigger"] / 1024),
            num(row["traced_per_trigger"] / 1024 if row["traced_per_trigger"] is not None else None),
            num(row["lag_p50_ms"]),
            num(row["lag_p99_ms"]),
            num(row["lag_max_ms"]),
            num(row["gc_max_pause_ms"]),
            str(row["connections_opened"]),
            str(row.get("sockets_max", "")),
            num(row["sandbox_cpu_s"], 2),
            num(row["other_cpu_s"], 2),
        ]
        for row in rows
    ]
    return markdown_table(headers, table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line; the defaults are what ``make bench`` runs (1,000 triggers, 5 s polls, 60 s; with
    ``--mix``: 5,000 triggers, 20 s polls, 90 s)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--mix",
        action="store_true",
        help="the five platforms' triggers mixed (modes mixed and http), each waiting on its own running job",
    )
    parser.add_argument("--triggers", type=int, default=None, help="concurrent triggers per run (1000; --mix 5000)")
    parser.add_argument("--duration", type=float, default=None, help="seconds each run lasts (60; --mix 90)")
    parser.add_argument("--poll-interval", type=float, default=None, help="seconds between polls (5; --mix 20)")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=[*MODES, "mixed", "http-quiet"],
        default=None,
        help="trigger types to run (default: anaplan http, --mix: mixed http; http-quiet silences "
        "HttpSensorTrigger's warnings)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="add a cProfile run of the first mode (writes .pstats and .profile.txt)"
    )
    parser.add_argument(
        "--no-tracemalloc", dest="tracemalloc", action="store_false", help="skip the tracemalloc heap runs"
    )
    parser.add_argument("--task-budget", type=float, default=120.0, help="max seconds spent starting tasks")
    parser.add_argument("--tmp-dir", default=None, help="where the temporary files go (default: system temp)")
    parser.add_argument("--output", type=Path, default=None, help="results JSON (default under benchmarks/results)")
    parser.add_argument(
        "--quiet-wait", type=float, default=15.0, help="max seconds to wait for an idle machine before each run"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one measurement (spec file)
    args = parser.parse_args(argv)
    mix = args.mix
    args.triggers = args.triggers or (5000 if mix else 1000)
    args.duration = args.duration or (90.0 if mix else 60.0)
    args.poll_interval = args.poll_interval or (20.0 if mix else 5.0)
    args.modes = args.modes or list(MIX_MODES if mix else MODES)
    args.output = args.output or RESULTS_DIR / ("mixed_triggers.json" if mix else "trigger_density.json")
    if "mixed" in args.modes and not mix:
        parser.error("mode 'mixed' needs --mix (it starts the five platforms' jobs)")
    if not 1 <= args.triggers <= 5000:
        parser.error("--triggers must be between 1 and 5000")
    if args.poll_interval < 5.0:
        parser.error("--poll-interval must be at least 5 s (the provider's minimum)")
    if not args.poll_interval + SETTLE_SECONDS < args.duration <= 600:
        parser.error("--duration must exceed poll interval + 2 s and be at most 600 s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run both trigger types, print the table, write the JSON."""
    args = parse_args(argv)
    if args.worker:
        worker(load_spec(args.worker))
        return 0
    started = time.monotonic()
    with workdir(args.tmp_dir, "sapplan-bench-triggers-") as base:
        measured = run_all(args, base)
    elapsed = time.monotonic() - started
    rows = summarize(measured["runs"])
    table = render(rows)
    print()
    print(table)
    print(f"\nTotal time {elapsed:.0f} s")
    payload = {
        "benchmark": "mixed_triggers" if args.mix else "trigger_density",
        "machine": machine_info(),
        "parameters": {
            "triggers": args.triggers,
            "mix": args.mix,
            "duration_s": args.duration,
            "poll_interval_s": args.poll_interval,
            "modes": args.modes,
            "tracemalloc": args.tracemalloc,
            "tick_s": TICK_SECONDS,
        },
        "elapsed_s": elapsed,
        "summary": rows,
        "table_markdown": table,
        **measured,
    }
    write_results(args.output, payload)
    print(f"Results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
