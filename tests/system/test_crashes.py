"""Crashes under a real Airflow stack, with zero duplicate remote jobs (issue 13, part 3).

One stack (tests/system/stack.py: sandbox, scheduler, triggerer, DAG processor, API server,
LocalExecutor) serves three cases, each with its own DAG written to a temporary DAGs folder and
one long remote job on every platform that has a wait (Anaplan process, Job Scheduling run, Cloud
Integration deploy, Analytics Cloud Multi Action, Data Intelligence graph):

1. the worker (LocalExecutor worker process and the task process under it) is SIGKILLed while
   NON-deferrable operators wait: the scheduler finds the tasks without heartbeat, retries them, and
   the retries reconnect to the jobs (``task_state_store``) instead of starting new ones;
2. the triggerer is SIGKILLed while deferrable operators wait, and restarted: every wait resumes
   from its serialized trigger and succeeds, no task is retried (this case runs on 2.11 too);
3. deferred tasks are marked failed through the REST API: the trigger's ``on_kill`` cancels the job
   where the platform can (Anaplan deletes the task, Data Intelligence stops the graph, Job
   Scheduling deactivates the one-time schedule) and leaves it running where it cannot.

Every case counts the jobs the sandbox started (``GET /_sandbox/stats`` -> ``tasks_started``):
exactly one per task. Figures are printed as ``CRASH-FIGURES {...}`` lines (run with ``-s``).
Cases 1 and 3 need Airflow 3.3 and skip on 2.11; what 2.11 does there is in docs/RELIABILITY-crashes.md.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_sapplan._compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS
from tests.system.stack import AirflowStack

pytestmark = pytest.mark.system

needs_3_3 = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS,
    reason="reconnecting a retried task to its job (task_state_store) and cancelling on a deferred task's kill "
    "(trigger on_kill) need Airflow 3.3+; what Airflow 2.11 does instead is in docs/RELIABILITY-crashes.md",
)

HEARTBEAT_TIMEOUT = 30  # [scheduler] task_instance_heartbeat_timeout (default 300)
TRIGGERER_HEALTH = 15  # [triggerer] triggerer_health_check_threshold (default 30)

ANAPLAN_PROCESS = {"worker": "118000000001", "triggerer": "118000000002", "mark_failed": "118000000001"}
SAC_MULTI_ACTION = "t.G:CEEF5D0F8B3C4A5D9E7F"
CPI_ARTIFACT = "Orders_Import"
JSS_JOB = "nightly_planning_refresh"

# What each platform's cancel does when a deferred task is marked failed (cancel_on_kill=True).
CANCELS = {
    "anaplan": "cancels the task (DELETE .../tasks/{id}): CANCELLED",
    "sap_job_scheduling": "deactivates the one-time schedule; a run already called keeps running",
    "sap_cloud_integration": "nothing: CPI has no API to cancel a deploy (logged)",
    "sap_analytics_cloud": "nothing: SAC has no API to stop a Multi Action execution (logged)",
    "sap_data_intelligence": "stops the graph run (dead)",
}

DAG_TEMPLATE = """
from datetime import datetime, timedelta

from airflow import DAG

from airflow_provider_sapplan.operators.anaplan import AnaplanRunProcessOperator
from airflow_provider_sapplan.operators.sap_analytics_cloud import SapAnalyticsCloudRunMultiActionOperator
from airflow_provider_sapplan.operators.sap_cloud_integration import SapCloudIntegrationDeployOperator
from airflow_provider_sapplan.operators.sap_data_intelligence import SapDataIntelligenceRunGraphOperator
from airflow_provider_sapplan.operators.sap_job_scheduling import SapJobSchedulingRunJobOperator

WAIT = dict(deferrable={deferrable}, poll_interval=5, max_poll_interval=5, timeout=timedelta(minutes=20){extra})

with DAG(
    dag_id="{dag_id}",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    default_args={{"retries": 1, "retry_delay": timedelta(seconds=5)}},
):
    AnaplanRunProcessOperator(task_id="anaplan", process_id="{anaplan_process}", **WAIT)
    SapJobSchedulingRunJobOperator(task_id="sap_job_scheduling", job_name="{jss_job}", **WAIT)
    SapCloudIntegrationDeployOperator(task_id="sap_cloud_integration", artifact_id="{cpi_artifact}", **WAIT)
    SapAnalyticsCloudRunMultiActionOperator(
        task_id="sap_analytics_cloud",
        multi_action_id="{sac_multi_action}",
        parameters={{"Version": ["public.Forecast"], "Rate": 1.05}},
        **WAIT,
    )
    SapDataIntelligenceRunGraphOperator(task_id="sap_data_intelligence", graph="{di_graph}", **WAIT)
"""

TASKS = ("anaplan", "sap_job_scheduling", "sap_cloud_integration", "sap_analytics_cloud", "sap_data_intelligence")


def dag_source(dag_id: str, case: str, *, deferrable: bool, cancel_on_kill: bool | None = None) -> str:
    extra = "" if cancel_on_kill is None else f", cancel_on_kill={cancel_on_kill}"
    return textwrap.dedent(DAG_TEMPLATE).format(
        dag_id=dag_id,
        deferrable=deferrable,
        extra=extra,
        anaplan_process=ANAPLAN_PROCESS[case],
        jss_job=JSS_JOB,
        cpi_artifact=CPI_ARTIFACT,
        sac_multi_action=SAC_MULTI_ACTION,
        di_graph=di_graph(case),
    )


def di_graph(case: str) -> str:
    return f"com.example.crash.{case}"


def started_keys(case: str) -> dict[str, str]:
    """Task id -> the sandbox's ``tasks_started`` key of its job."""
    return {
        "anaplan": ANAPLAN_PROCESS[case],
        "sap_cloud_integration": f"cpi:deploy:{CPI_ARTIFACT}",
        "sap_analytics_cloud": f"sac:multiaction:{SAC_MULTI_ACTION}",
        "sap_data_intelligence": f"sap_data_intelligence:graph:{di_graph(case)}",
    }


DAGS = {
    "crash_worker": dag_source("crash_worker", "worker", deferrable=False),
    "crash_triggerer": dag_source("crash_triggerer", "triggerer", deferrable=True),
    "crash_mark_failed": dag_source("crash_mark_failed", "mark_failed", deferrable=True, cancel_on_kill=True),
    # Airflow 2.11's SequentialExecutor runs one task at a time: its worker case has the Anaplan task only.
    "crash_worker_airflow2": dag_source("crash_worker_airflow2", "worker", deferrable=False).split(
        "    SapJobSchedulingRunJobOperator("
    )[0],
}


# -- helpers ---------------------------------------------------------------------------------------


def wait_for(what: str, check: Callable[[], Any], stack: AirflowStack, timeout: float, every: float = 2.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        stack.procs.check_alive()
        if time.time() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}; task instances: {stack.task_instances()}\n"
                f"{stack.procs.log('scheduler')[-3000:]}"
            )
        time.sleep(every)


def tasks_started(stack: AirflowStack) -> dict[str, int]:
    return dict(stack.sandbox("/_sandbox/stats?log=0")["tasks_started"])


def started_delta(stack: AirflowStack, before: dict[str, int]) -> dict[str, int]:
    """Jobs started since ``before``, per ``tasks_started`` key (Job Scheduling runs under one ``jss`` key)."""
    delta: dict[str, int] = {}
    for key, value in tasks_started(stack).items():
        grown = value - before.get(key, 0)
        if grown:
            name = "jss" if key.startswith("jss:") else key
            delta[name] = delta.get(name, 0) + grown
    return delta


def expected_delta(case: str) -> dict[str, int]:
    return {**{key: 1 for key in started_keys(case).values()}, "jss": 1}


def ti_rows(stack: AirflowStack, dag_id: str) -> dict[str, tuple[Any, ...]]:
    """task_id -> (state, try_number, pid)."""
    rows = stack.query("select task_id, state, try_number, pid from task_instance where dag_id = ?", dag_id)
    return {row[0]: tuple(row[1:]) for row in rows}


def none_failed(stack: AirflowStack, dag_id: str) -> bool:
    """True while no task of ``dag_id`` failed; raises (with the scheduler's log) as soon as one did."""
    failed = {task: row for task, row in ti_rows(stack, dag_id).items() if row[0] in ("failed", "up_for_retry")}
    if failed:
        raise AssertionError(
            f"{dag_id}: tasks failed before the crash: {failed}\n{stack.procs.log('scheduler')[-4000:]}"
        )
    return True


def task_log(stack: AirflowStack, dag_id: str, task_id: str, attempt: int) -> str:
    paths = (stack.home / "logs" / f"dag_id={dag_id}").rglob(f"task_id={task_id}/attempt={attempt}.log")
    return "".join(path.read_text(errors="replace") for path in paths)


def trigger_logs(stack: AirflowStack) -> str:
    """The triggerer's output and every trigger log file (AirflowStack.trigger_logs also globs directories)."""
    files = (path for path in (stack.home / "logs").rglob("*.log.trigger.*") if path.is_file())
    return stack.procs.log("triggerer") + "".join(path.read_text(errors="replace") for path in files)


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def api(stack: AirflowStack, method: str, path: str, body: Any = None) -> Any:
    """Call Airflow's public REST API; with the simple auth manager's all-admins mode no token is needed."""
    request = urllib.request.Request(
        stack.api_url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{method} {path} answered {err.code}: {err.read()[:2000]!r}") from None


def configure_long_jobs(stack: AirflowStack, case: str, seconds: float) -> None:
    """Make every platform's job of ``case`` run ``seconds`` (emulated = real at time scale 1)."""
    stack.sandbox("/_sandbox/anaplan/config", {"action_id": ANAPLAN_PROCESS[case], "run_seconds": seconds})
    stack.sandbox("/_sandbox/sap_job_scheduling/config", {"job_name": JSS_JOB, "running_seconds": seconds})
    stack.sandbox(
        "/_sandbox/sap_cloud_integration/deploy_config", {"artifact_id": CPI_ARTIFACT, "starting_seconds": seconds}
    )
    stack.sandbox("/_sandbox/sap_analytics_cloud/config", {"multi_action_seconds": seconds})
    stack.sandbox(f"/_sandbox/sap_data_intelligence/graphs/{di_graph(case)}", {"duration": seconds})


def figures(case: str, **values: Any) -> None:
    print(f"CRASH-FIGURES {json.dumps({'case': case, **values})}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("crashes")
    dags = root / "dags"
    dags.mkdir()
    for dag_id, source in DAGS.items():
        (dags / f"{dag_id}.py").write_text(source)
    env = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH),
        "AIRFLOW__SCHEDULER__SCHEDULER_ZOMBIE_TASK_THRESHOLD": str(HEARTBEAT_TIMEOUT),  # 2.11's name
    }
    with AirflowStack(root, env=env) as started:
        started.wait_parsed(DAGS, time.time() + 240)
        yield started


# -- 1. worker killed -----------------------------------------------------------------------------


@needs_3_3
def test_worker_killed_while_non_deferrable_operators_wait(stack: AirflowStack) -> None:
    dag_id, case, job_seconds = "crash_worker", "worker", 90
    configure_long_jobs(stack, case, job_seconds)
    before = tasks_started(stack)
    stack.trigger(dag_id, "kill_worker")

    # Every task runs, its job is started and recorded (the wait's first "checking again" comes after).
    wait_for(
        "every task to be waiting on its job",
        lambda: (
            none_failed(stack, dag_id) and all("checking again" in task_log(stack, dag_id, task, 1) for task in TASKS)
        ),
        stack,
        180,
    )
    rows = ti_rows(stack, dag_id)
    assert all(rows[task][0] == "running" and rows[task][2] for task in TASKS), rows
    killed_at = time.time()
    for task in TASKS:
        pid = int(rows[task][2])
        worker = parent_pid(pid)  # the LocalExecutor worker that supervises the task process
        assert "airflow" in Path(f"/proc/{worker}/cmdline").read_text(errors="replace"), worker
        os.kill(worker, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)

    retried = wait_for(
        "the retries to start",
        lambda: all(ti_rows(stack, dag_id)[task][1] >= 2 for task in TASKS) and time.time(),
        stack,
        HEARTBEAT_TIMEOUT + 120,
    )
    states = stack.wait_finished(time.time() + job_seconds + 120, 1, dag_id)
    finished = time.time()
    rows = ti_rows(stack, dag_id)
    assert set(states.values()) == {"success"}, rows
    assert {task: rows[task][:2] for task in TASKS} == {task: ("success", 2) for task in TASKS}
    for task in TASKS:
        retry_log = task_log(stack, dag_id, task, 2)
        assert "Reconnecting to existing job" in retry_log or "already completed" in retry_log, retry_log[-3000:]
    assert started_delta(stack, before) == expected_delta(case)  # zero duplicates
    figures(
        "worker",
        tasks=len(TASKS),
        jobs_started=sum(started_delta(stack, before).values()),
        kill_to_retry_s=round(retried - killed_at, 1),
        kill_to_run_end_s=round(finished - killed_at, 1),
        heartbeat_timeout_s=HEARTBEAT_TIMEOUT,
    )


@pytest.mark.skipif(AIRFLOW_V_3_3_PLUS, reason="Airflow 3.3 reconnects: see the test above")
def test_airflow_2_worker_killed_retry_starts_a_second_job(stack: AirflowStack) -> None:
    """Pins what docs/RELIABILITY-crashes.md says of Airflow 2.11: no task_state_store, so the retry
    of a killed non-deferrable task cannot find its job and starts a second one (the first keeps
    running). If this ever reconnects, update the docs."""
    dag_id, case, job_seconds = "crash_worker_airflow2", "worker", 90
    configure_long_jobs(stack, case, job_seconds)
    before = tasks_started(stack)
    stack.trigger(dag_id, "kill_worker")
    wait_for(
        "the task to be waiting on its job",
        lambda: none_failed(stack, dag_id) and "checking again" in task_log(stack, dag_id, "anaplan", 1),
        stack,
        180,
    )
    pid = int(ti_rows(stack, dag_id)["anaplan"][2])
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)  # the raw task process; its LocalTaskJob sees it die
    states = stack.wait_finished(time.time() + 2 * job_seconds + 180, 1, dag_id)
    finished = time.time()
    rows = ti_rows(stack, dag_id)
    assert set(states.values()) == {"success"} and rows["anaplan"][:2] == ("success", 2), rows
    assert "Durable reconnect needs Airflow 3.3+" in task_log(stack, dag_id, "anaplan", 2)
    assert started_delta(stack, before) == {ANAPLAN_PROCESS[case]: 2}  # the documented duplicate
    figures(
        "worker",
        airflow="2",
        tasks=1,
        jobs_started=2,
        kill_to_run_end_s=round(finished - killed_at, 1),
        zombie_threshold_s=HEARTBEAT_TIMEOUT,
    )


# -- 2. triggerer killed ----------------------------------------------------------------------------


def test_triggerer_killed_and_restarted_while_triggers_wait(stack: AirflowStack) -> None:
    # Airflow 2.11's SequentialExecutor starts the five tasks one after the other: longer jobs.
    dag_id, case, job_seconds = "crash_triggerer", "triggerer", 60 if AIRFLOW_V_3_0_PLUS else 150
    configure_long_jobs(stack, case, job_seconds)
    before = tasks_started(stack)
    stack.trigger(dag_id, "kill_triggerer")

    def running_triggers() -> list[tuple[Any, ...]]:
        return stack.query(
            "select t.id, t.triggerer_id from trigger t join task_instance ti on ti.trigger_id = t.id "
            "where ti.dag_id = ? and ti.state = 'deferred' and t.triggerer_id is not null",
            dag_id,
        )

    first = wait_for(
        "every task to defer to the triggerer",
        lambda: none_failed(stack, dag_id) and len(running_triggers()) == len(TASKS) and running_triggers(),
        stack,
        180,
    )
    time.sleep(5)  # the triggers are polling
    old_triggerer = {row[1] for row in first}
    stack.procs.kill("triggerer", signal.SIGKILL)
    killed_at = time.time()
    time.sleep(5)
    stack.procs.restart("triggerer")
    restarted_at = time.time()
    resumed = wait_for(
        "the restarted triggerer to take every trigger over",
        lambda: (
            (rows := running_triggers())
            and len(rows) == len(TASKS)
            and not {row[1] for row in rows} & old_triggerer
            and time.time()
        ),
        stack,
        TRIGGERER_HEALTH + 120,
        every=1,
    )
    states = stack.wait_finished(time.time() + job_seconds + 120, 1, dag_id)
    finished = time.time()
    rows = ti_rows(stack, dag_id)
    assert set(states.values()) == {"success"}, rows
    assert {task: rows[task][:2] for task in TASKS} == {task: ("success", 1) for task in TASKS}  # no retry
    assert started_delta(stack, before) == expected_delta(case)  # zero duplicates
    figures(
        "triggerer",
        airflow="3" if AIRFLOW_V_3_0_PLUS else "2",
        waits=len(TASKS),
        jobs_started=sum(started_delta(stack, before).values()),
        down_s=round(restarted_at - killed_at, 1),
        restart_to_resumed_s=round(resumed - restarted_at, 1),
        kill_to_run_end_s=round(finished - killed_at, 1),
        triggerer_health_check_threshold_s=TRIGGERER_HEALTH,
    )


# -- 3. deferred tasks marked failed ----------------------------------------------------------------


@needs_3_3
def test_deferred_tasks_marked_failed_cancel_what_can_be_cancelled(stack: AirflowStack) -> None:
    dag_id, case, run_id, job_seconds = "crash_mark_failed", "mark_failed", "mark_failed", 120
    configure_long_jobs(stack, case, job_seconds)
    before = tasks_started(stack)
    di_before = stack.sandbox("/_sandbox/sap_data_intelligence/state")["graph_stops"]
    stack.trigger(dag_id, run_id)
    wait_for(
        "every task to defer to the triggerer",
        lambda: (
            len(
                stack.query(
                    "select ti.task_id from task_instance ti join trigger t on ti.trigger_id = t.id "
                    "where ti.dag_id = ? and ti.state = 'deferred' and t.triggerer_id is not null",
                    dag_id,
                )
            )
            == len(TASKS)
        ),
        stack,
        180,
    )
    time.sleep(5)  # the triggers are polling
    marked_at = time.time()
    for task in TASKS:
        answer = api(
            stack,
            "PATCH",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}",
            {"new_state": "failed"},
        )
        assert answer["task_instances"][0]["state"] == "failed", answer

    def anaplan_task_state() -> str | None:
        tasks = [
            t for t in stack.sandbox("/_sandbox/anaplan/tasks")["tasks"] if t.get("actionId") == ANAPLAN_PROCESS[case]
        ]
        return tasks[-1].get("taskState") if tasks else None

    wait_for("the Anaplan task to be cancelled", lambda: anaplan_task_state() == "CANCELLED", stack, 120, every=1)
    cancelled_at = time.time()
    wait_for(
        "the Data Intelligence graph to be stopped",
        lambda: stack.sandbox("/_sandbox/sap_data_intelligence/state")["graph_stops"] == di_before + 1,
        stack,
        30,
        every=1,
    )
    logs = wait_for(
        "every trigger's on_kill to end",
        lambda: (text := trigger_logs(stack)).count("after the deferred task was killed") >= len(TASKS) and text,
        stack,
        120,
    )
    assert logs.count("invoking on_kill") >= len(TASKS)
    assert logs.count("is now failed: cancelling") >= len(TASKS)
    assert "Could not cancel" not in logs
    assert "cannot cancel a deploy in progress" in logs and "cannot stop a Multi Action execution" in logs
    time.sleep(10)  # nothing restarts the work: no retry (marked failed), no second job
    rows = ti_rows(stack, dag_id)
    assert {task: rows[task][:2] for task in TASKS} == {task: ("failed", 1) for task in TASKS}, rows
    assert started_delta(stack, before) == expected_delta(case)  # zero duplicates
    figures(
        "mark_failed",
        tasks=len(TASKS),
        jobs_started=sum(started_delta(stack, before).values()),
        mark_to_anaplan_cancelled_s=round(cancelled_at - marked_at, 1),
        cancels=CANCELS,
    )
