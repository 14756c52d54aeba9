"""Fault soak: every example DAG, many runs, through real Airflow, against a sandbox that misbehaves.

The sandbox answers a share of all platform requests with 5xx, 429 + ``Retry-After``, dropped
connections and slow answers (probabilistic fault rules), issues tokens that expire in the middle
of waits, and a chaos thread expires every token, invalidates CSRF tokens and sessions, and locks
the Anaplan model for a while, at random moments. Each example DAG keeps one run active until it has
run ``rounds`` times (the five DAGs run side by side). A fault-free baseline round first gives the
jobs each DAG run starts and how long a run takes without faults.

Reported (``run_soak`` returns it; ``python -m tests.system.soak`` prints it as Markdown and writes
JSON): DAG runs by state, failed task tries and their causes, remote jobs started per job requested
(from the sandbox's ``tasks_started`` counters: exactly 1 means nothing was started twice and
nothing was lost), requests per completed job, and the extra time faults cost per run (p50/p95).

Short form: tests/system/test_soak.py. Long form (docs/RELIABILITY.md):
``.venvs/airflow-3.3.2/bin/python -m tests.system.soak --rounds 25``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_sapplan._compat import AIRFLOW_V_3_0_PLUS
from tests.system.stack import FINISHED, AirflowStack

RULE_FIELDS = ("status", "drop", "delay_seconds", "probability", "applied")
ANAPLAN_MODEL = "75A40874E6B64FA3AE0743278996850F"

#: Remote jobs one run of each example DAG starts (sandbox ``tasks_started`` keys). Checked against
#: the fault-free baseline round, so a DAG that changes makes the soak fail loudly, not miscount.
JOBS_PER_RUN: dict[str, dict[str, int]] = {
    "anaplan_planning_cycle": {"112000000001": 1, "118000000001": 1, "116000000001": 1},
    "sap_job_scheduling_run": {"jss:2": 1},  # the job ensure_job creates in a fresh sandbox
    "sap_cloud_integration_release": {"cpi:deploy:Orders_Release": 1, "cpi:flow:/orders/release": 1},
    "sap_data_intelligence_replication": {
        "sap_data_intelligence:change_request:RF_SALES": 2,
        "sap_data_intelligence:graph:com.example.sales.check_replication": 1,
    },
    "planning_close": {
        "116000000001": 1,
        "sac:import:C9ZOF2L9O8JEEVDQ36A4J4Q0FG": 1,
        "sac:multiaction:t.G:CEEF5D0F8B3C4A5D9E7F": 1,
        "sac:schedule:F58CA15F78AA9039E200586F05E2BB93": 1,
    },
}


@dataclass
class FaultMix:
    """Shares of platform requests that misbehave (overall rates; the rules' chances are derived)."""

    server_errors: float = 0.10  # 500, 502, 503, 504 in equal parts
    rate_limited: float = 0.05  # 429 with Retry-After: 1
    dropped: float = 0.02  # connection closed without an answer
    slow: float = 0.03  # answered normally after slow_seconds
    slow_seconds: float = 2.0

    def rules(self) -> list[dict[str, Any]]:
        """Fault rules (``POST /_sandbox/faults``) whose overall hit rates are the shares above.

        A rule only sees the requests the rules before it spared, so each rule's chance is its
        share divided by what is left.
        """
        rules: list[dict[str, Any]] = []
        left = 1.0
        wanted: list[tuple[float, dict[str, Any]]] = [
            *((self.server_errors / 4, {"status": status}) for status in (500, 502, 503, 504)),
            (self.rate_limited, {"status": 429, "headers": {"Retry-After": "1"}}),
            (self.dropped, {"drop": True}),
            (self.slow, {"delay_seconds": self.slow_seconds}),
        ]
        for share, action in wanted:
            if share <= 0:
                continue
            rules.append({"path_regex": "^/", "times": -1, "probability": min(share / left, 1.0), **action})
            left -= share
        return rules


@dataclass
class SoakConfig:
    rounds: int = 2
    faults: FaultMix = field(default_factory=FaultMix)
    token_ttl: float = 20.0  # tokens expire in the middle of waits without any help
    chaos_every: float = 15.0  # mean seconds between chaos events
    lock_seconds: float = 8.0  # how long the Anaplan model stays locked
    deadline_seconds: float = 3600.0
    seed: int | None = None


class Chaos(threading.Thread):
    """Expires tokens, invalidates CSRF tokens/sessions and locks the Anaplan model at random moments."""

    EVENTS = ("expire_tokens", "invalidate_csrf", "lock_model")

    def __init__(self, stack: AirflowStack, config: SoakConfig) -> None:
        super().__init__(daemon=True, name="soak-chaos")
        self.stack = stack
        self.config = config
        self.random = random.Random(config.seed)
        self.stopped = threading.Event()
        self.events: Counter[str] = Counter()
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stopped.wait(self.random.expovariate(1 / self.config.chaos_every)):
            event = self.random.choice(self.EVENTS)
            try:
                getattr(self, event)()
                self.events[event] += 1
            except Exception as exc:  # the soak goes on; the report shows it
                self.errors.append(f"{event}: {exc}")

    def expire_tokens(self) -> None:
        for platform in ("anaplan", "sap_job_scheduling", "sap_cloud_integration", "sap_analytics_cloud"):
            self.stack.sandbox(f"/_sandbox/{platform}/expire_tokens", {})

    def invalidate_csrf(self) -> None:
        self.stack.sandbox("/_sandbox/sap_cloud_integration/csrf", {"invalidate": True})
        self.stack.sandbox("/_sandbox/sap_analytics_cloud/drop_sessions", {})

    def lock_model(self) -> None:
        self.stack.sandbox("/_sandbox/anaplan/model_state", {"model_id": ANAPLAN_MODEL, "state": "locked"})
        try:
            self.stopped.wait(self.config.lock_seconds)
        finally:
            self.stack.sandbox("/_sandbox/anaplan/model_state", {"model_id": ANAPLAN_MODEL, "state": "ok"})

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


def drive(stack: AirflowStack, dag_ids: list[str], rounds: int, prefix: str, deadline: float) -> list[str]:
    """Run each DAG ``rounds`` times, one active run per DAG, the DAGs side by side; the run ids."""
    triggered: dict[str, int] = dict.fromkeys(dag_ids, 0)
    active: dict[str, str | None] = dict.fromkeys(dag_ids, None)
    run_ids: list[str] = []
    while any(count < rounds for count in triggered.values()) or any(active.values()):
        assert time.time() < deadline, f"soak deadline passed: {triggered}, active {active}"
        states = stack.run_states()
        for dag_id in dag_ids:
            run_id = active[dag_id]
            if run_id is not None and states.get((dag_id, run_id)) not in FINISHED:
                continue
            active[dag_id] = None
            if triggered[dag_id] < rounds:
                run_id = f"{prefix}-{triggered[dag_id] + 1:03d}"
                stack.trigger(dag_id, run_id)
                triggered[dag_id] += 1
                active[dag_id] = run_id
                run_ids.append(run_id)
        stack.procs.check_alive()
        time.sleep(2)
    return run_ids


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))], 1)


_IDS = re.compile(r"\b[0-9A-Fa-f-]{16,}\b|:\d{4,5}/")


def failure_cause(stack: AirflowStack, dag_id: str, run_id: str, task_id: str, attempt: int) -> str:
    """The last error of one task try's log as ``ExceptionType: message`` (or why it could not be read)."""
    logs = list((stack.home / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/attempt={attempt}.log"))
    if not logs:
        return "no log"
    return last_error(logs[0].read_text(errors="replace"))[:220]


_TRACEBACK_END = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Exit|Interrupt)): (.*)$")


def last_error(log: str) -> str:
    """The error a task try raised: Airflow 3's JSON log records (``error_detail``, outermost first) or the
    last traceback line ``package.module.ExcType: message`` of Airflow 2's text log."""
    cause = "no error in the log"
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            text = _TRACEBACK_END.match(line.strip())
            if text:
                cause = f"{text.group(1)}: {text.group(2)}"
            continue
        details = record.get("error_detail") if isinstance(record, dict) else None
        if details:
            last = details[0] if isinstance(details, list) else details  # the outermost: what the task raised
            cause = f"{last.get('exc_type')}: {last.get('exc_value')}" if isinstance(last, dict) else str(last)
    return cause


def cause_group(cause: str) -> str:
    """A cause without its ids and ports, so that the same failure on different jobs counts together."""
    return _IDS.sub("…", cause)[:160]


def failed_tries(stack: AirflowStack, run_ids: set[str]) -> list[dict[str, Any]]:
    """Every task try of ``run_ids`` that failed, with its cause."""
    tries: list[tuple[str, str, str, int, str]] = []
    history = "task_instance_history" if AIRFLOW_V_3_0_PLUS else "task_fail"
    if history == "task_instance_history":
        tries += stack.query("select dag_id, run_id, task_id, try_number, state from task_instance_history")
    else:
        tries += [
            (*row, "failed")
            for row in stack.query(
                "select f.dag_id, f.run_id, f.task_id, t.try_number - 1 from task_fail f join task_instance t "
                "on f.dag_id = t.dag_id and f.run_id = t.run_id and f.task_id = t.task_id"
            )
        ]
    tries += stack.query(
        "select dag_id, run_id, task_id, try_number, state from task_instance where state not in ('success', 'skipped')"
    )
    failures = []
    for dag_id, run_id, task_id, attempt, state in tries:
        if run_id not in run_ids or state in ("success", "skipped", "upstream_failed") or not attempt:
            continue
        failures.append(
            {
                "dag_id": dag_id,
                "run_id": run_id,
                "task_id": task_id,
                "try": attempt,
                "state": state,
                "cause": failure_cause(stack, dag_id, run_id, task_id, attempt),
            }
        )
    return failures


def _expected_jobs(runs: Counter[str]) -> Counter[str]:
    expected: Counter[str] = Counter()
    for dag_id, count in runs.items():
        for key, per_run in JOBS_PER_RUN[dag_id].items():
            expected[key] += per_run * count
    return expected


def run_soak(root: Path, config: SoakConfig) -> dict[str, Any]:
    """Run the baseline round, then the faulted rounds; the report (see the module docstring)."""
    dag_ids = list(JOBS_PER_RUN)
    started_at = time.time()
    deadline = started_at + config.deadline_seconds
    with AirflowStack(root, sandbox_args=["--token-ttl", str(config.token_ttl)]) as stack:
        stack.wait_parsed(dag_ids, deadline)
        for dag_id in dag_ids:
            stack.airflow("dags", "unpause", dag_id)
        # Unpausing the scheduled DI DAG starts its latest interval's run: let it finish first.
        scheduled = [dag for dag in dag_ids if dag == "sap_data_intelligence_replication"]
        while scheduled and not stack.run_states(scheduled[0]) and time.time() < started_at + 60:
            time.sleep(1)
        stack.wait_finished(deadline, 0)
        before = stack.sandbox("/_sandbox/stats?log=0")

        baseline_ids = set(drive(stack, dag_ids, 1, "baseline", deadline))
        after_baseline = stack.sandbox("/_sandbox/stats?log=0")

        stack.sandbox("/_sandbox/faults", config.faults.rules())
        chaos = Chaos(stack, config)
        chaos.start()
        soak_started = time.time()
        try:
            soak_ids = set(drive(stack, dag_ids, config.rounds, "soak", deadline))
        finally:
            chaos.stop()
            faults = stack.sandbox("/_sandbox/faults")["faults"]
            stack.sandbox("/_sandbox/faults", method="DELETE")
        soak_seconds = time.time() - soak_started
        after = stack.sandbox("/_sandbox/stats?log=0")

        runs = stack.query("select dag_id, run_id, state, start_date, end_date from dag_run")
        report = _report(
            stack, config, runs, baseline_ids, soak_ids, before, after_baseline, after, faults, chaos, soak_seconds
        )
    report["wall_seconds"] = round(time.time() - started_at)
    return report


def _report(
    stack: AirflowStack,
    config: SoakConfig,
    runs: list[tuple[Any, ...]],
    baseline_ids: set[str],
    soak_ids: set[str],
    before: dict[str, Any],
    after_baseline: dict[str, Any],
    after: dict[str, Any],
    faults: list[dict[str, Any]],
    chaos: Chaos,
    soak_seconds: float,
) -> dict[str, Any]:
    def started(stats: dict[str, Any]) -> Counter[str]:
        return Counter(stats["tasks_started"])

    baseline_runs = Counter(dag for dag, run_id, *_ in runs if run_id in baseline_ids)
    soak_runs = Counter(dag for dag, run_id, *_ in runs if run_id in soak_ids)
    baseline_started = started(after_baseline) - started(before)
    soak_started = started(after) - started(after_baseline)
    soak_expected = _expected_jobs(soak_runs)
    baseline_duration: dict[str, list[float]] = {}
    extra: list[float] = []
    for dag_id, run_id, _state, start, end in runs:
        seconds = _seconds(start, end)
        if seconds is not None and run_id in baseline_ids:
            baseline_duration.setdefault(dag_id, []).append(seconds)
    for dag_id, run_id, _state, start, end in runs:
        seconds = _seconds(start, end)
        if seconds is not None and run_id in soak_ids and dag_id in baseline_duration:
            extra.append(seconds - statistics.median(baseline_duration[dag_id]))
    jobs = sum(soak_started.values())
    requests = after["total"] - after_baseline["total"]
    failures = failed_tries(stack, soak_ids)
    return {
        "airflow": "3" if AIRFLOW_V_3_0_PLUS else "2",
        "config": asdict(config),
        "fault_rules": [{key: rule[key] for key in RULE_FIELDS} for rule in faults],
        "faults_applied": sum(rule["applied"] for rule in faults),
        "chaos_events": dict(chaos.events),
        "chaos_errors": chaos.errors,
        "baseline": {
            "runs": dict(baseline_runs),
            "jobs_started": dict(baseline_started),
            "jobs_expected": dict(_expected_jobs(baseline_runs)),
            "requests": after_baseline["total"] - before["total"],
        },
        "soak_seconds": round(soak_seconds),
        "dag_runs": dict(Counter(state for _dag, run_id, state, *_ in runs if run_id in soak_ids)),
        "dag_runs_by_dag": {dag: count for dag, count in soak_runs.items()},
        "failed_tries": failures,
        "failure_causes": dict(Counter(cause_group(failure["cause"]) for failure in failures)),
        "jobs_expected": sum(soak_expected.values()),
        "jobs_started": jobs,
        "jobs_per_requested": {key: soak_started[key] / count for key, count in soak_expected.items()},
        "unexpected_jobs": {key: n for key, n in soak_started.items() if key not in soak_expected},
        "requests": requests,
        "requests_per_job": round(requests / jobs, 1) if jobs else None,
        "baseline_requests_per_job": (
            round((after_baseline["total"] - before["total"]) / sum(baseline_started.values()), 1)
            if baseline_started
            else None
        ),
        "statuses": after["statuses"],
        "extra_seconds_p50": _percentile(extra, 0.5),
        "extra_seconds_p95": _percentile(extra, 0.95),
        "baseline_seconds": {dag: round(statistics.median(values), 1) for dag, values in baseline_duration.items()},
    }


def _pair(report: dict[str, Any], first: str, second: str) -> str:
    return f"{report[first]} / {report[second]}"


def markdown(report: dict[str, Any]) -> str:
    """The report as the table docs/RELIABILITY.md shows."""
    per_job = report["jobs_per_requested"]
    rows = [
        ("Airflow", report["airflow"]),
        ("DAG runs (faulted)", ", ".join(f"{n} {state}" for state, n in report["dag_runs"].items())),
        ("Remote jobs started / requested", f"{report['jobs_started']} / {report['jobs_expected']}"),
        ("Jobs started per job requested", f"min {min(per_job.values()):.2f}, max {max(per_job.values()):.2f}"),
        ("Jobs nobody asked for", str(report["unexpected_jobs"] or 0)),
        ("Faults applied", f"{report['faults_applied']} of {report['requests']} requests"),
        ("Chaos events", ", ".join(f"{n} {event}" for event, n in sorted(report["chaos_events"].items()))),
        ("Failed task tries", str(len(report["failed_tries"]))),
        ("Requests per job (faulted / baseline)", _pair(report, "requests_per_job", "baseline_requests_per_job")),
        ("Extra time per run p50 / p95 (s)", f"{report['extra_seconds_p50']} / {report['extra_seconds_p95']}"),
        ("Soak wall time (s)", str(report["soak_seconds"])),
    ]
    lines = ["| measure | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    if report["failure_causes"]:
        lines += ["", "| failed try cause | tries |", "|---|---|"]
        lines += [f"| {cause} | {n} |" for cause, n in report["failure_causes"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25, help="runs of each example DAG under faults (default 25)")
    parser.add_argument("--root", type=Path, default=None, help="working directory (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the chaos thread")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/soak.json"))
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sapplan-soak-") as tmp:
        root = args.root or Path(tmp)
        report = run_soak(root, SoakConfig(rounds=args.rounds, deadline_seconds=6 * 3600, seed=args.seed))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, sort_keys=True))
    print(markdown(report))


if __name__ == "__main__":
    main()
