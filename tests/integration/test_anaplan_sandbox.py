"""AnaplanHook, trigger and operators against the real sandbox server: no mocks."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_provider_sapplan._compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_sapplan.core.async_http import close_shared_session
from airflow_provider_sapplan.exceptions import AuthenticationError, RemoteJobFailedError
from airflow_provider_sapplan.hooks.anaplan import MIB, AnaplanHook
from airflow_provider_sapplan.operators.anaplan import AnaplanRunImportOperator
from airflow_provider_sapplan.sandbox import SandboxServer
from airflow_provider_sapplan.triggers.anaplan import AnaplanTaskTrigger

pytestmark = pytest.mark.integration

IMPORT_ID = "112000000001"
FILE_ID = "113000000001"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_done(hook: AnaplanHook, action_type: str, action_id: str, task_id: str) -> dict[str, Any]:
    for _ in range(200):
        task = hook.get_task(action_type, action_id, task_id)
        if task["taskState"] in ("COMPLETE", "CANCELLED"):
            return task
        time.sleep(0.05)
    raise AssertionError("task did not finish")


def test_multi_chunk_upload_comes_back_byte_identical(live: SandboxServer, tmp_path: Path) -> None:
    source = tmp_path / "actuals.bin"
    source.write_bytes(os.urandom(MIB) * 5 + os.urandom(12345))  # 6 chunks of 1 MiB, last one short
    hook = AnaplanHook()
    result = hook.upload_file(FILE_ID, source, chunk_size=MIB, max_parallel=3)
    assert result["chunk_count"] == 6
    target = tmp_path / "back.bin"
    hook.download_file(FILE_ID, target)
    assert sha256(target) == sha256(source)


def test_gzip_upload_is_stored_decompressed(live: SandboxServer, tmp_path: Path) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(b"Region,Amount\n" + b"EMEA,1\n" * 200_000)
    hook = AnaplanHook()
    sent = hook.upload_file(FILE_ID, source, compress=True)
    assert sent["bytes_sent"] < sent["bytes"] / 10
    hook.download_file(FILE_ID, tmp_path / "b.csv")
    assert (tmp_path / "b.csv").read_bytes() == source.read_bytes()


def test_token_is_reused_across_many_calls(live: SandboxServer) -> None:
    for _ in range(25):
        AnaplanHook().list_files()
    assert live.stats.auth_requests["anaplan"] == 1


def test_expired_token_is_renewed_transparently(live: SandboxServer) -> None:
    hook = AnaplanHook()
    hook.list_files()
    live.anaplan.expire_tokens()
    assert hook.list_files()
    assert live.stats.auth_requests["anaplan"] == 2


def test_429_from_the_server_is_waited_out(live: SandboxServer) -> None:
    live.faults.add(method="GET", path_regex=r"/files$", status=429, headers={"Retry-After": "0.2"}, times=2)
    started = time.monotonic()
    assert AnaplanHook().list_files()
    assert time.monotonic() - started >= 0.4


def test_dropped_connection_on_read_is_retried(live: SandboxServer) -> None:
    live.faults.add(method="GET", path_regex=r"/imports$", drop=True, times=1)
    assert AnaplanHook().list_imports()


def test_html_login_page_is_an_authentication_error(live: SandboxServer) -> None:
    live.faults.add(method="GET", path_regex=r"/exports$", html_login=True, times=1)
    with pytest.raises(AuthenticationError, match="HTML page"):
        AnaplanHook().list_exports()


def test_unknown_file_id_never_reaches_the_upload_endpoint(live: SandboxServer, tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_bytes(b"a\n")
    with pytest.raises(Exception, match="silently create"):
        AnaplanHook().upload_file("113000000999", tmp_path / "x.csv")
    assert live.stats.files_created == []


def test_failed_import_through_trigger_reports_dump_rows(live: SandboxServer, tmp_path: Path, capsys: Any) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("Region,Amount\nEMEA,10\nAMER,#INVALID\nAPJ,#INVALID\n")
    hook = AnaplanHook()
    hook.upload_file(FILE_ID, source)
    op = AnaplanRunImportOperator(task_id="load", import_id=IMPORT_ID, dump_destination=str(tmp_path / "dumps"))
    ref = op.submit({})
    wait_done(hook, "imports", IMPORT_ID, ref["task_id"])

    async def run_trigger() -> list[Any]:
        trigger = AnaplanTaskTrigger(conn_id="anaplan_default", ref=ref, poll_interval=5)
        events = [event async for event in trigger.run()]
        await close_shared_session()
        return events

    events = asyncio.run(run_trigger())
    assert [e.payload["status"] for e in events] == ["failed"]
    assert events[0].payload["raw_state"] == "COMPLETE"
    with pytest.raises(RemoteJobFailedError, match="2 row\\(s\\) failed"):
        op.execute_complete({"ti": mock.MagicMock()}, events[0].payload)
    saved = list((tmp_path / "dumps").iterdir())
    assert len(saved) == 1 and saved[0].read_text().count("#INVALID") == 2


def test_cancel_moves_task_to_cancelled(live: SandboxServer) -> None:
    live.anaplan.configure(IMPORT_ID, run_seconds=30)
    hook = AnaplanHook()
    task = hook.run_action("import", IMPORT_ID)
    hook.cancel_task("import", IMPORT_ID, task["taskId"])
    assert wait_done(hook, "imports", IMPORT_ID, task["taskId"])["taskState"] == "CANCELLED"


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="durable execution needs Airflow 3.3+")
def test_durable_retry_reconnects_and_starts_no_second_task(live: SandboxServer, monkeypatch: Any) -> None:
    real_sleep = time.sleep
    monkeypatch.setattr("airflow_provider_sapplan.core.operator.time.sleep", lambda s: real_sleep(0.05))
    store: dict[str, Any] = {}
    task_store = mock.MagicMock(spec_set=["get", "set"])
    task_store.get.side_effect = store.get
    task_store.set.side_effect = store.__setitem__
    context = {"ti": mock.MagicMock(stats_tags={}), "task_state_store": task_store}
    op = AnaplanRunImportOperator(task_id="load", import_id=IMPORT_ID, deferrable=False)
    store["anaplan_task"] = op.submit_job(context)  # first try started the task, then the worker died
    assert live.stats.tasks_started[IMPORT_ID] == 1
    result = AnaplanRunImportOperator(task_id="load", import_id=IMPORT_ID, deferrable=False).execute(context)
    assert result["task_id"] == store["anaplan_task"]["task_id"]
    assert live.stats.tasks_started[IMPORT_ID] == 1


def test_hook_reads_the_sandbox_bare_array_lists(live: SandboxServer) -> None:
    """The sandbox answers the process (and file) lists as bare arrays, as the reference documents."""
    hook = AnaplanHook()
    wrapped = [p["id"] for p in hook.list_processes()]
    live.anaplan.bare_array_lists = {"processes", "files", "chunks"}
    try:
        assert [p["id"] for p in hook.list_processes()] == wrapped and wrapped
        assert hook.list_files()
        name = hook.list_processes()[0]["name"]
        assert hook.resolve_id("processes", name) == wrapped[0]
    finally:
        live.anaplan.bare_array_lists = set()
