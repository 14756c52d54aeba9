"""Provider registration, the token cache under concurrency, storage paths and connection tests."""

from __future__ import annotations

import threading
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_sapplan.core.auth import TOKEN_CACHE
from airflow_provider_sapplan.core.retry import RetryPolicy, server_requested_delay
from airflow_provider_sapplan.core.storage import open_for_read, open_for_write, source_size
from airflow_provider_sapplan.get_provider_info import get_provider_info
from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
from tests.conftest import ANAPLAN_API, ANAPLAN_AUTH, MODEL, WORKSPACE
from tests.unit.test_anaplan_hook import token_body


def test_entry_point_and_package_name_match_the_distribution() -> None:
    (entry,) = [
        e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_provider_sapplan")
    ]
    info = entry.load()()
    assert info == get_provider_info()
    assert info["package-name"] == "airflow-provider-sapplan"
    conn = {c["connection-type"]: c for c in info["connection-types"]}["anaplan"]
    assert conn["hook-class-name"] == "airflow_provider_sapplan.hooks.anaplan.AnaplanHook"
    assert conn["conn-fields"]["private_key_password"]["schema"]["format"] == "password"
    assert "host" in conn["ui-field-behaviour"]["hidden-fields"]


def test_providers_manager_discovers_the_provider() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-sapplan" in manager.providers
    assert "anaplan" in manager.hooks


def test_every_referenced_module_and_link_imports() -> None:
    import importlib

    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for link in info["extra-links"]:
        module, _, name = link.rpartition(".")
        assert hasattr(importlib.import_module(module), name)


def test_concurrent_callers_share_one_token_renewal(anaplan_conn: str, requests_mock: Any) -> None:
    def slow_token(request: Any, context: Any) -> dict[str, Any]:
        time.sleep(0.2)  # every caller arrives while the first login is in flight
        return token_body()

    requests_mock.post(f"{ANAPLAN_AUTH}/token/authenticate", json=slow_token)
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"workspaces": []})
    errors: list[BaseException] = []

    def call() -> None:
        try:
            AnaplanHook(anaplan_conn).list_workspaces()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.url.endswith("/token/authenticate") for r in requests_mock.request_history) == 1
    assert TOKEN_CACHE.get(AnaplanHook(anaplan_conn).get_conn().config.auth.cache_key) is not None  # type: ignore[union-attr]


def test_test_connection_reports_success_and_failure(anaplan_conn: str, requests_mock: Any) -> None:
    requests_mock.post(f"{ANAPLAN_AUTH}/token/authenticate", json=token_body())
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"meta": {"paging": {"totalSize": 2}}, "workspaces": [{}]})
    requests_mock.get(f"{ANAPLAN_API}/workspaces/{WORKSPACE}", json={"item": {"id": WORKSPACE}})
    requests_mock.get(f"{ANAPLAN_API}/workspaces/{WORKSPACE}/models/{MODEL}", json={"model": {"id": MODEL}})
    assert AnaplanHook(anaplan_conn).test_connection() == (
        True,
        f"Connected to Anaplan; 2 workspace(s) visible. Workspace {WORKSPACE} found. Model {MODEL} found.",
    )
    requests_mock.get(f"{ANAPLAN_API}/workspaces", status_code=403, json={"message": "no role"})
    ok, message = AnaplanHook(anaplan_conn).test_connection()
    assert not ok and "403" in message and "role" in message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "12"}, 12.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"throttling": "1500"}, 1.5),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
    ids=["seconds", "lowercase", "sap-throttling-ms", "garbage", "none"],
)
def test_server_requested_delay(headers: dict[str, str], expected: float | None) -> None:
    assert server_requested_delay(headers) == expected


def test_retry_after_http_date() -> None:
    from email.utils import formatdate

    delay = server_requested_delay({"Retry-After": formatdate(time.time() + 30, usegmt=True)})
    assert delay is not None and 25 <= delay <= 31


def test_non_idempotent_requests_only_retry_unsent_statuses() -> None:
    policy = RetryPolicy().with_statuses(409, 423)
    assert policy.should_retry_status(502, idempotent=True)
    assert not policy.should_retry_status(502, idempotent=False)
    assert policy.should_retry_status(429, idempotent=False)
    assert policy.should_retry_status(423, idempotent=False)
    assert not policy.should_retry_status(400, idempotent=True)


def test_object_storage_paths_round_trip(tmp_path: Path) -> None:
    from airflow_provider_sapplan._compat import ObjectStoragePath

    remote = ObjectStoragePath(f"file://{tmp_path}/folder/data.csv")  # goes through the object-storage API
    remote.parent.mkdir(parents=True, exist_ok=True)
    with open_for_write(remote) as sink:
        sink.write(b"a,b\n1,2\n")
    assert source_size(remote) == 8
    with open_for_read(remote) as source:
        assert source.read() == b"a,b\n1,2\n"


def test_missing_local_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="does not exist"):
        source_size(tmp_path / "nope.csv")


def test_no_secret_reaches_xcom_or_trigger_kwargs(anaplan_conn: str, requests_mock: Any) -> None:
    import json as jsonlib
    from unittest import mock

    from airflow_provider_sapplan._compat import TaskDeferred
    from airflow_provider_sapplan.operators.anaplan import AnaplanRunImportOperator
    from tests.conftest import MODEL, WORKSPACE

    tasks = f"{ANAPLAN_API}/workspaces/{WORKSPACE}/models/{MODEL}/imports/112000000001/tasks"
    requests_mock.post(f"{ANAPLAN_AUTH}/token/authenticate", json=token_body("SECRET-TOKEN-VALUE"))
    requests_mock.post(tasks, json={"task": {"taskId": "T1"}})
    requests_mock.get(f"{tasks}/T1", json={"task": {"taskState": "IN_PROGRESS"}})
    ti = mock.MagicMock()
    with pytest.raises(TaskDeferred) as deferred:
        AnaplanRunImportOperator(task_id="t", import_id="112000000001", deferrable=True).execute({"ti": ti})
    pushed = jsonlib.dumps([c.kwargs for c in ti.xcom_push.call_args_list])
    kwargs = jsonlib.dumps(deferred.value.trigger.serialize()[1])
    for secret in ("SECRET-TOKEN-VALUE", "s3cret-pass"):
        assert secret not in pushed and secret not in kwargs
