"""Integration fixtures: a real sandbox server, connections pointing at it, a migrated Airflow DB."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_sapplan.sandbox import SandboxServer
from example_dags.run_demo import DAGS, export_connections, migrate_database


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(time_scale=0.5) as server:
        yield server


@pytest.fixture
def live(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    """The sandbox, reset to its seed state, with every connection pointing at it."""
    sandbox.reset()
    saved = {key: value for key, value in os.environ.items() if key.startswith("AIRFLOW_CONN_")}
    export_connections(sandbox.url)
    for key in os.environ:
        if key.startswith("AIRFLOW_CONN_") and key not in saved:
            monkeypatch.setenv(key, os.environ[key])
    return sandbox


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata DB for dag.test(); returns the example DAGs' output folder."""
    assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS), "set by tests/conftest.py before Airflow loads"
    migrate_database()
    return Path(os.environ["SAPPLAN_DEMO_OUTPUT"])
