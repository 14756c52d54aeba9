"""A platform outage in the middle of a deferred wait, on every platform, through dag.test() (issue 13, part 2).

Each test runs a platform's example DAG against its own in-process sandbox. The target task's remote
job is made long; once the sandbox has answered the trigger's first status poll (the operator checks
once before deferring, so the second answered status poll is the trigger's), the sandbox goes down for
``SAPPLAN_OUTAGE_SECONDS`` (20 s by default; set it to 300 to ride out five minutes). The job ends
while the platform is down; the wait must ride the outage out, notice the platform is back, and the
task and DAG must succeed with the remote job started once.

The HTTP core's retry budget is cut to two quick attempts here (the connections have no retry
setting), so each poll fails within about a second and the test proves the trigger's outage window,
not the transport's retries. Tokens live 12 s, so the triggers must also log in again during and
after the outage. A second test shows that an outage longer than a small ``outage_window`` fails
the task with a message naming ``outage_window``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_sapplan.core.retry import RetryPolicy
from airflow_provider_sapplan.core.transport_policy import TransportPolicy
from airflow_provider_sapplan.sandbox import SandboxServer
from example_dags.run_demo import load_dag, sandbox_connections

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = float(os.environ.get("SAPPLAN_OUTAGE_SECONDS", "20"))
#: Emulated durations run 50 times faster: every other wait of the DAGs ends before it needs to defer.
TIME_SCALE = 0.02
#: Access tokens expire during the outage, so a trigger's poll must log in again while the platform is down.
TOKEN_TTL = 12.0
#: The target job ends (real seconds) half-way through the outage, while the platform is down.
JOB_SECONDS = 3.0 + OUTAGE_SECONDS / 2
#: Two attempts, at most a second apart: the transport alone survives about one second of outage.
QUICK_RETRIES = {"max_attempts": 2, "initial_wait": 0.5, "max_wait": 1.0}
TRIGGER_LOGGER = "airflow_provider_sapplan.core.trigger"


@dataclass(frozen=True)
class Case:
    """One platform's example DAG, the deferred task the outage hits, and how to read the sandbox."""

    platform: str
    dag_id: str
    task_id: str
    mode: str
    status_path: str  #: regex for the path the trigger polls
    make_long: Callable[[SandboxServer, float], None]  #: make the target job last N real seconds
    starts: Callable[[SandboxServer], int]  #: remote jobs the target task started

    @property
    def outage_mode(self) -> str:
        return os.environ.get("SAPPLAN_OUTAGE_MODE", self.mode)


def _started(prefix: str) -> Callable[[SandboxServer], int]:
    return lambda sandbox: sum(n for key, n in sandbox.stats.tasks_started.items() if key.startswith(prefix))


CASES = [
    Case(
        "anaplan",
        "anaplan_planning_cycle",
        "import_actuals",
        "refuse",
        r"/imports/112000000001/tasks/[^/]+$",
        lambda sandbox, s: sandbox.anaplan.configure("112000000001", run_seconds=s / TIME_SCALE),
        _started("112000000001"),
    ),
    Case(
        "sap_job_scheduling",
        "sap_job_scheduling_run",
        "run_job_now",
        "503",
        r"/scheduler/jobs/\d+/schedules/[^/]+/runs",
        lambda sandbox, s: sandbox.sap_job_scheduling.configure(
            job_name="planning_actuals_refresh", running_seconds=s / TIME_SCALE
        ),
        _started("jss:"),
    ),
    Case(
        "sap_cloud_integration",
        "sap_cloud_integration_release",
        "release_orders",
        "drop",
        r"/MessageProcessingLogs",
        lambda sandbox, s: sandbox.sap_cloud_integration.configure_flow(
            "Orders_Release", processing_seconds=s / TIME_SCALE
        ),
        _started("cpi:flow:"),
    ),
    Case(
        "sap_analytics_cloud",
        "planning_close",
        "roll_forecast_forward",
        "refuse",
        r"/multiActions/[^/]+/executions/[^/]+$",
        lambda sandbox, s: sandbox.platforms["sap_analytics_cloud"].backend.configure(
            multi_action_seconds=s / TIME_SCALE
        ),
        _started("sac:multiaction:"),
    ),
    Case(
        "sap_data_intelligence",
        "sap_data_intelligence_replication",
        "run_check_pipeline",
        "refuse",
        r"/runtime/graphs/[^/]+$",
        lambda sandbox, s: sandbox.sap_data_intelligence.configure_graph(
            "com.example.sales.check_replication", duration=s / TIME_SCALE
        ),
        _started("sap_data_intelligence:graph:"),
    ),
]


@pytest.fixture(scope="module")
def outage_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(time_scale=TIME_SCALE, token_ttl=TOKEN_TTL) as server:
        yield server


@pytest.fixture
def down(outage_sandbox: SandboxServer, airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    """The sandbox in its seed state, connections pointing at it, and the transport's retries cut short."""
    outage_sandbox.reset()
    for conn_id, conn in sandbox_connections(outage_sandbox.url).items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    of = TransportPolicy.of

    def quick(cls: type[TransportPolicy], config: Any) -> TransportPolicy:
        return of(dataclasses.replace(config, policy=dataclasses.replace(config.policy, **QUICK_RETRIES)))

    monkeypatch.setattr(TransportPolicy, "of", classmethod(quick))
    return outage_sandbox


class TriggerLog(logging.Handler):
    """Collects what the triggers log (warnings for tolerated failures, errors when they give up)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def trigger_log() -> Iterator[TriggerLog]:
    handler = TriggerLog()
    logger = logging.getLogger(TRIGGER_LOGGER)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


class OutageDriver(threading.Thread):
    """Starts the outage once the trigger's first status poll was answered (the task is DEFERRED)."""

    def __init__(self, sandbox: SandboxServer, case: Case, seconds: float) -> None:
        super().__init__(name=f"outage-{case.platform}", daemon=True)
        self.sandbox, self.case, self.seconds = sandbox, case, seconds
        self.outage: dict[str, Any] | None = None
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while not self.done.is_set() and time.monotonic() < deadline:
            if len(status_answers(self.sandbox, self.case)) >= 2:
                mode = self.case.outage_mode
                platform = None if mode == "refuse" else self.case.platform
                self.outage = self.sandbox.outage(self.seconds, mode, platform)
                return
            time.sleep(0.02)


def status_answers(sandbox: SandboxServer, case: Case, after: float = 0.0) -> list[dict[str, Any]]:
    """The successful status polls of the target job (epoch ``time`` after ``after``), oldest first."""
    pattern = re.compile(case.status_path)
    return [
        record
        for record in sandbox.stats.to_dict(log_tail=2000)["log"]
        if record["method"] == "GET"
        and record["status"] is not None
        and 200 <= record["status"] < 300
        and record["time"] > after
        and pattern.search(record["path"])
    ]


def run_with_outage(sandbox: SandboxServer, case: Case, seconds: float, **task_changes: Any) -> tuple[Any, Any]:
    """dag.test() the case's example DAG while a driver takes the sandbox down mid-wait."""
    case.make_long(sandbox, JOB_SECONDS)
    dag = load_dag(case.dag_id)
    for name, value in task_changes.items():
        setattr(dag.get_task(case.task_id), name, value)
    driver = OutageDriver(sandbox, case, seconds)
    driver.start()
    try:
        dag_run = dag.test()
    finally:
        driver.done.set()
        driver.join(timeout=5)
        sandbox.outages.end()
    assert driver.outage is not None, f"the trigger of {case.task_id} never polled: the outage did not start"
    return dag_run, sandbox.outages.history[-1]


def state_of(dag_run: Any) -> str:
    return str(getattr(dag_run, "state", dag_run)).rsplit(".", 1)[-1].lower()


def task_state(dag_run: Any, task_id: str) -> str:
    (ti,) = [ti for ti in dag_run.get_task_instances() if ti.task_id == task_id]
    return str(ti.state).rsplit(".", 1)[-1].lower()


@pytest.mark.parametrize("case", CASES, ids=[case.platform for case in CASES])
def test_deferred_wait_rides_out_an_outage(down: SandboxServer, trigger_log: TriggerLog, case: Case) -> None:
    retries_survive = RetryPolicy(**QUICK_RETRIES).worst_case_seconds(0.0)
    assert retries_survive * 5 < OUTAGE_SECONDS  # the transport's retries alone cannot ride it out
    started, wall = time.monotonic(), time.time()
    dag_run, outage = run_with_outage(down, case, OUTAGE_SECONDS)
    elapsed = time.monotonic() - started

    assert state_of(dag_run) == "success", trigger_log.messages(logging.ERROR)
    assert case.starts(down) == 1  # the remote job was started once
    assert outage.ended_at - outage.started_at >= OUTAGE_SECONDS - 0.1
    tolerated = [m for m in trigger_log.messages(logging.WARNING) if "poll failed" in m and "still waiting" in m]
    assert tolerated, "the trigger logged no tolerated poll failure: the outage did not hit the wait"
    assert not trigger_log.messages(logging.ERROR)
    after = status_answers(down, case, after=outage.ended_at)
    assert after, "no status poll was answered after the outage"
    noticed = after[0]["time"] - outage.ended_at
    print(
        f"\nOUTAGE {case.platform}: mode {outage.mode}, down {outage.ended_at - outage.started_at:.1f}s, "
        f"recovery noticed after {noticed:.1f}s, {len(tolerated)} failed polls tolerated, "
        f"dropped {outage.dropped}, 503s {outage.answered_503}, connections cut {outage.connections_cut}, "
        f"outage began {outage.started_at - wall:.1f}s into the run, test {elapsed:.1f}s"
    )


def test_an_outage_longer_than_the_window_fails_the_task_clearly(
    down: SandboxServer, trigger_log: TriggerLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = next(c for c in CASES if c.platform == "sap_job_scheduling")
    failures: list[BaseException] = []
    from airflow_provider_sapplan.operators.sap_job_scheduling import SapJobSchedulingRunJobOperator

    resume = SapJobSchedulingRunJobOperator.execute_complete

    def spy(self: Any, context: Any, event: Any = None) -> Any:
        try:
            return resume(self, context, event)
        except BaseException as err:
            failures.append(err)
            raise

    monkeypatch.setattr(SapJobSchedulingRunJobOperator, "execute_complete", spy)
    window = 6.0
    started = time.monotonic()
    dag_run, outage = run_with_outage(down, case, 120.0, outage_window=window, retries=0)
    elapsed = time.monotonic() - started

    assert state_of(dag_run) == "failed" and task_state(dag_run, case.task_id) == "failed"
    assert outage.mode == "503" and outage.answered_503 >= 2  # ended by the test, long before its 120 s
    assert case.starts(down) == 1
    assert elapsed < 60  # it gave up after the window, long before the outage would have ended
    (error,) = failures
    message = str(error)
    assert "outage_window" in message and f"the outage window is {window:.0f}s" in message, message
    assert "kept failing for" in message and "failed in the triggerer" in message
    (gave_up,) = trigger_log.messages(logging.ERROR)
    assert "set outage_window to wait longer" in gave_up
    lasted = float(re.search(r"kept failing for (\d+)s", message).group(1))  # type: ignore[union-attr]
    assert window <= lasted < 30
    print(f"\nOUTAGE window {window:.0f}s: gave up after {lasted:.0f}s of failures; test {elapsed:.1f}s")


def test_an_outage_right_after_the_start_is_ridden_out_too(
    down: SandboxServer, trigger_log: TriggerLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform goes down between the job's start and the operator's one check before deferring."""
    case = next(c for c in CASES if c.platform == "sap_job_scheduling")
    from airflow_provider_sapplan.operators.sap_job_scheduling import SapJobSchedulingRunJobOperator

    submit = SapJobSchedulingRunJobOperator.submit

    def submit_then_go_down(self: Any, context: Any) -> dict[str, Any]:
        ref = submit(self, context)
        down.outage(OUTAGE_SECONDS, "refuse")
        return ref

    monkeypatch.setattr(SapJobSchedulingRunJobOperator, "submit", submit_then_go_down)
    case.make_long(down, JOB_SECONDS)
    dag = load_dag(case.dag_id)
    dag.get_task(case.task_id).retries = 0  # a failed first check would fail the run, not retry it
    try:
        dag_run = dag.test()
    finally:
        down.outages.end()
    assert state_of(dag_run) == "success", trigger_log.messages(logging.ERROR)
    assert case.starts(down) == 1
    assert any("poll failed" in m for m in trigger_log.messages(logging.WARNING))
