"""Shared fixtures: an isolated AIRFLOW_HOME, connections from environment variables, a clean token cache."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

_HOME = tempfile.mkdtemp(prefix="sapplan-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
# dag.test() on Airflow 3.3 syncs DAGs from the configured DAGs folder: make it the example DAGs.
os.environ.setdefault(
    "AIRFLOW__CORE__DAGS_FOLDER", os.path.join(os.path.dirname(os.path.dirname(__file__)), "example_dags")
)
os.environ.setdefault("SAPPLAN_DEMO_OUTPUT", tempfile.mkdtemp(prefix="sapplan-demo-output-"))

ANAPLAN_API = "https://api.anaplan.test/2/0"
ANAPLAN_AUTH = "https://auth.anaplan.test"
WORKSPACE = "8a868cd97d1e2f3b017d2f4a5b6c0001"
MODEL = "75A40874E6B64FA3AE0743278996850F"


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    """Define an Airflow connection through its environment variable (no database needed)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


@pytest.fixture(autouse=True)
def _clean_token_cache() -> Iterator[None]:
    from airflow_provider_sapplan.core.auth import TOKEN_CACHE
    from airflow_provider_sapplan.core.rate_budget import BUDGETS

    TOKEN_CACHE.clear()
    BUDGETS.clear()
    yield
    TOKEN_CACHE.clear()
    BUDGETS.clear()


@pytest.fixture
def anaplan_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    set_connection(
        monkeypatch,
        "anaplan_default",
        conn_type="anaplan",
        login="user@example.com",
        password="s3cret-pass",
        extra={
            "auth_url": ANAPLAN_AUTH,
            "api_url": ANAPLAN_API,
            "workspace_id": WORKSPACE,
            "model_id": MODEL,
        },
    )
    return "anaplan_default"
