"""Rate-limit benchmark: 500 Anaplan waits in one triggerer against a tenant limit of 600 requests a minute.

Why: Anaplan allows 600 requests a minute per tenant and answers 429 beyond. A triggerer that waits on
hundreds of one tenant's jobs must stay under it; the provider's per-process request budget
(``core/rate_budget.py``, connection extra ``requests_per_minute``, 600 by default for Anaplan)
spreads the polls and backs off together on a 429. This benchmark shows what the budget does and
what it costs, next to the same run with the budget off.

What, for each budget (``--budgets``, default ``600`` then ``0`` = off), with a fresh sandbox each:

- the sandbox (its own process) gets ``--triggers`` import tasks (default 500) whose ends are spread
  evenly, in shuffled order, over ``--spread`` seconds starting ``--lead`` seconds after the first
  task was created (each task's ``run_seconds`` is set through the control API just before it starts,
  so its real end time is known);
- then the sandbox enforces ``--limit`` requests (default 600) in any sliding 60 s window on the
  Anaplan API (``POST /_sandbox/rate_limit``; logging in is not limited);
- one worker process (a triggerer's event loop) runs one ``AnaplanTaskTrigger`` per task
  (poll_interval 5 s growing to 60 s), started evenly over the first poll interval, until every
  trigger has fired or the run's deadline (last end + ``--grace``) passes.

Measured: trigger events by status (``error`` = a failed task), triggers that never fired, the
sandbox's counters (most requests in any sliding 60 s window, accepted and offered; 429s; accepted
requests per minute), and how late each job's end was noticed (event time minus the task's real
end: p50/p95/max).

Run from the repository root: ``python benchmarks/rate_limit.py`` (``--help`` for options); a short
run: ``python benchmarks/rate_limit.py --triggers 100 --spread 60 --lead 20``. Writes
``benchmarks/results/rate_limit.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (
    IMPORT_ID,
    LOGIN,
    MODEL_ID,
    PASSWORD,
    RESULTS_DIR,
    WORKSPACE_ID,
    Sandbox,
    anaplan_connection,
    emit_result,
    load_spec,
    machine_info,
    markdown_table,
    percentile,
    run_worker,
    workdir,
    worker_env,
    write_results,
)

SCRIPT = Path(__file__).resolve()

# ----------------------------------------------------------------------------------- worker side


async def drive(index: int, trigger: Any, events: list[tuple[int, str, float]]) -> None:
    """Run one trigger the way the triggerer does and record (index, status, wall time) of its event."""
    try:
        async for event in trigger.run():
            payload = event.payload
            status = payload.get("status") if isinstance(payload, dict) else str(payload)
            events.append((index, str(status), time.time()))
            return
        events.append((index, "ended without event", time.time()))
    except asyncio.CancelledError:
        raise
    except Exception as err:
        events.append((index, f"raised:{type(err).__name__}", time.time()))


async def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Start the triggers evenly over one poll interval; wait for all of them or the deadline."""
    from airflow_provider_sapplan.triggers.anaplan import AnaplanTaskTrigger

    task_ids: list[str] = spec["task_ids"]
    interval = float(spec["poll_interval"])
    events: list[tuple[int, str, float]] = []
    tasks: list[asyncio.Task[None]] = []
    started = time.time()
    for index, task_id in enumerate(task_ids):
        trigger = AnaplanTaskTrigger(
            conn_id="anaplan_default",
            ref={
                "workspace_id": WORKSPACE_ID,
                "model_id": MODEL_ID,
                "action_type": "imports",
                "action_id": IMPORT_ID,
                "task_id": task_id,
            },
            poll_interval=interval,
            max_poll_interval=float(spec["max_poll_interval"]),
        )
        tasks.append(asyncio.create_task(drive(index, trigger, events)))
        await asyncio.sleep(interval / len(task_ids))
    all_started = time.time()
    remaining = float(spec["deadline"]) - time.time()
    if remaining > 0:
        await asyncio.wait(tasks, timeout=remaining)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"events": events, "started": started, "all_started": all_started, "ended": time.time()}


def worker(spec: dict[str, Any]) -> None:
    """One measured run in this (fresh) process."""
    emit_result(asyncio.run(measure(spec)))


# ----------------------------------------------------------------------------------- parent side


def create_tasks(sandbox: Sandbox, count: int, lead: float, spread: float, seed: int) -> tuple[list[str], list[float]]:
    """Start ``count`` import tasks ending at shuffled, evenly spread times; returns ids and real end times."""
    http = sandbox.http
    answer = http.post(f"{sandbox.url}/anaplan/auth/token/authenticate", auth=(LOGIN, PASSWORD), timeout=30)
    answer.raise_for_status()
    headers = {"Authorization": f"AnaplanAuthToken {answer.json()['tokenInfo']['tokenValue']}"}
    url = f"{sandbox.url}/anaplan/api/2/0/workspaces/{WORKSPACE_ID}/models/{MODEL_ID}/imports/{IMPORT_ID}/tasks"
    offsets = [lead + spread * i / max(1, count - 1) for i in range(count)]
    random.Random(seed).shuffle(offsets)
    origin = time.time()
    ids: list[str] = []
    ends: list[float] = []
    for offset in offsets:
        sent = time.time()
        sandbox.configure_action(IMPORT_ID, queue_seconds=0, run_seconds=max(0.0, origin + offset - sent))
        sent = time.time()
        answer = http.post(url, json={"localeName": "en_US"}, headers=headers, timeout=30)
        answer.raise_for_status()
        ids.append(str(answer.json()["task"]["taskId"]))
        # The sandbox's task ends `run_seconds` after it handled the start (between sent and now).
        ends.append(max(sent, origin + offset) + (time.time() - sent) / 2)
    return ids, ends


def one_run(args: argparse.Namespace, base: Path, budget: int) -> dict[str, Any]:
    """A fresh sandbox with the limit, tasks, and one worker with ``requests_per_minute=budget``."""
    name = f"budget-{budget or 'off'}"
    run_dir = base / name
    run_dir.mkdir()
    with Sandbox(run_dir / "sandbox-data", run_dir / "sandbox.log") as sandbox:
        ids, ends = create_tasks(sandbox, args.triggers, args.lead, args.spread, args.seed)
        answer = sandbox.http.post(
            f"{sandbox.url}/_sandbox/rate_limit", json={"platform": "anaplan", "per_minute": args.limit}, timeout=30
        )
        answer.raise_for_status()
        connection = anaplan_connection(sandbox.url)
        connection["extra"]["requests_per_minute"] = budget
        env = worker_env(sandbox.url, run_dir, {"AIRFLOW_CONN_ANAPLAN_DEFAULT": json.dumps(connection)})
        deadline = max(ends) + args.grace
        spec = {
            "name": name,
            "task_ids": ids,
            "poll_interval": args.poll_interval,
            "max_poll_interval": args.max_poll_interval,
            "deadline": deadline,
        }
        print(f"[{name}] {len(ids)} tasks, last end in {max(ends) - time.time():.0f} s; triggers start", flush=True)
        result = run_worker(SCRIPT, spec, env, run_dir / "worker.log", timeout=deadline - time.time() + 120)
        stats = sandbox.stats()
    limit = stats.get("rate_limits", {}).get("anaplan", {})
    by_index = {index: (status, at) for index, status, at in result["events"]}
    outcomes = collections.Counter(status for status, _ in by_index.values())
    outcomes["no event (deadline)"] = len(ids) - len(by_index)
    late = [at - ends[index] for index, (status, at) in by_index.items() if status == "success"]
    return {
        "name": name,
        "budget_per_minute": budget,
        "limit_per_minute": args.limit,
        "triggers": len(ids),
        "outcomes": {k: v for k, v in outcomes.items() if v},
        "failed": len(ids) - outcomes["success"],
        "ended_before_all_triggers_started": sum(1 for end in ends if end < result["all_started"]),
        "max_accepted_in_window": limit.get("max_accepted_in_window"),
        "max_offered_in_window": limit.get("max_offered_in_window"),
        "accepted": limit.get("accepted"),
        "limited_429": limit.get("limited"),
        "accepted_per_minute": limit.get("accepted_per_minute"),
        "late_p50_s": round(percentile(late, 0.50), 1),
        "late_p95_s": round(percentile(late, 0.95), 1),
        "late_max_s": round(max(late, default=0.0), 1),
        "wall_s": round(result["ended"] - result["started"], 1),
    }


def render(runs: list[dict[str, Any]]) -> str:
    """The side-by-side table."""
    headers = [
        "budget (req/min)",
        "triggers",
        "failed",
        "max req in any 60 s (accepted / offered)",
        "limit",
        "429s",
        "late p50 (s)",
        "late p95 (s)",
        "late max (s)",
    ]
    rows = [
        [
            str(run["budget_per_minute"] or "off"),
            run["triggers"],
            run["failed"],
            # No sandbox limit (--limit 0): the sandbox keeps no window counters.
            f"{run['max_accepted_in_window']} / {run['max_offered_in_window']}" if run["limit_per_minute"] else "-",
            run["limit_per_minute"] or "none",
            run["limited_429"] if run["limit_per_minute"] else "-",
            run["late_p50_s"],
            run["late_p95_s"],
            run["late_max_s"],
        ]
        for run in runs
    ]
    return markdown_table(headers, rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="N AnaplanTaskTriggers in one event loop against a sandbox enforcing a tenant rate limit, "
        "with the provider's request budget on and off.",
        epilog="Short run: --triggers 100 --spread 60 --lead 20. Writes benchmarks/results/rate_limit.json.",
    )
    parser.add_argument("--triggers", type=int, default=500, help="concurrent waits (default 500)")
    parser.add_argument(
        "--limit",
        type=int,
        default=600,
        help="sandbox limit, requests per sliding 60 s (default 600; 0 = none: lateness of the poll schedule alone)",
    )
    parser.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        default=[600, 0],
        help="connection requests_per_minute for each run; 0 = budget off (default: 600 0)",
    )
    parser.add_argument("--lead", type=float, default=30.0, help="seconds from task creation to the first end")
    parser.add_argument("--spread", type=float, default=180.0, help="seconds over which the tasks end (default 180)")
    parser.add_argument("--grace", type=float, default=180.0, help="seconds after the last end before giving up")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="first poll interval (default 5)")
    parser.add_argument("--max-poll-interval", type=float, default=60.0, help="largest poll interval (default 60)")
    parser.add_argument("--seed", type=int, default=13, help="shuffles which task ends when")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "rate_limit.json", help="results file")
    parser.add_argument("--workdir", default=None, help="parent of the temporary directory")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is None:
        if args.triggers < 1 or args.limit < 0 or min(args.budgets) < 0:
            parser.error("--triggers must be at least 1, --limit and --budgets not negative")
        if args.lead < args.poll_interval + 5:
            parser.error("--lead must leave the triggers time to start (at least --poll-interval + 5 s)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(load_spec(args.worker))
        return 0
    runs: list[dict[str, Any]] = []
    started = time.time()
    with workdir(args.workdir, "sapplan-rate-limit-") as base:
        for budget in args.budgets:
            run = one_run(args, base, budget)
            print(json.dumps(run), flush=True)
            runs.append(run)
    table = render(runs)
    write_results(
        args.output,
        {"machine": machine_info(), "args": {k: str(v) for k, v in vars(args).items()}, "runs": runs},
    )
    print(f"\n{table}\n\n({time.time() - started:.0f} s in all; results in {args.output})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
