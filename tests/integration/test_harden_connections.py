"""Issues 8.1 / 8.2 / 9 against the real sandbox: Test proves credentials, keys never share tokens."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from airflow_provider_sapplan.core.auth import TOKEN_CACHE
from airflow_provider_sapplan.exceptions import AuthenticationError
from airflow_provider_sapplan.hooks.anaplan import AnaplanHook
from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook
from airflow_provider_sapplan.sandbox import SandboxServer
from tests.certificates import pem_key, self_signed

TEMP_ID = "FFtFoykL"


def _pems() -> tuple[str, str, str]:
    """One certificate, its key, and an unrelated key."""
    key, cert = self_signed(None, email="integration@example.com")
    other, _ = self_signed()
    return cert, pem_key(key), pem_key(other)


def _anaplan_conn(live: SandboxServer, conn_id: str, **extra: Any) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_ANAPLAN_DEFAULT"])
    conn["extra"].update(extra)
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)


@pytest.fixture
def cleanup_env() -> Any:
    before = set(os.environ)
    yield
    for key in set(os.environ) - before:
        del os.environ[key]


def test_anaplan_test_button_with_good_and_bad_passwords(live: SandboxServer, cleanup_env: Any) -> None:
    _anaplan_conn(live, TEMP_ID)
    ok, message = AnaplanHook(TEMP_ID).test_connection()
    assert ok, message
    assert "Workspace 8a868cd97d1e2f3b017d2f4a5b6c0001 found. Model 75A40874E6B64FA3AE0743278996850F found." in message
    conn = json.loads(os.environ[f"AIRFLOW_CONN_{TEMP_ID.upper()}"])
    conn["password"] = "wrong"
    os.environ[f"AIRFLOW_CONN_{TEMP_ID.upper()}"] = json.dumps(conn)
    ok, message = AnaplanHook(TEMP_ID).test_connection()
    assert not ok and "Login (the Anaplan user's email) and Password" in message and TEMP_ID not in message


def test_anaplan_test_button_checks_the_default_model(live: SandboxServer, cleanup_env: Any) -> None:
    _anaplan_conn(live, TEMP_ID, model_id="00000000000000000000000000000000")
    ok, message = AnaplanHook(TEMP_ID).test_connection()
    assert not ok and "default model_id '00000000000000000000000000000000' does not exist" in message


def test_a_shared_certificate_with_the_wrong_key_never_gets_the_owners_token(
    live: SandboxServer, cleanup_env: Any
) -> None:
    cert, key, other_key = _pems()
    _anaplan_conn(live, "cert_owner", auth_type="certificate", certificate=cert, private_key=key)
    _anaplan_conn(live, "cert_thief", auth_type="certificate", certificate=cert, private_key=other_key)
    for conn_id in ("cert_owner", "cert_thief"):
        conn = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])
        conn.pop("password")
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    assert AnaplanHook("cert_owner").list_workspaces()  # the owner's token is now cached in this process
    ok, message = AnaplanHook("cert_thief").test_connection()
    assert not ok and "rejected the credentials" in message
    with pytest.raises(AuthenticationError):
        AnaplanHook("cert_thief").list_workspaces()
    assert len(TOKEN_CACHE._tokens) == 1  # only the owner's


def test_job_scheduling_test_button_with_good_and_bad_secrets(live: SandboxServer, cleanup_env: Any) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_SAP_JOB_SCHEDULING_DEFAULT"])
    os.environ[f"AIRFLOW_CONN_{TEMP_ID.upper()}"] = json.dumps(conn)
    ok, message = SapJobSchedulingHook(TEMP_ID).test_connection()
    assert ok and message.startswith("Connected to SAP Job Scheduling;"), message
    conn["extra"]["service_key"]["uaa"]["clientsecret"] = "rotated"
    os.environ[f"AIRFLOW_CONN_{TEMP_ID.upper()}"] = json.dumps(conn)
    ok, message = SapJobSchedulingHook(TEMP_ID).test_connection()
    assert not ok and "uaa.clientsecret" in message and TEMP_ID not in message


def test_cf_service_key_output_works_against_the_sandbox(live: SandboxServer, cleanup_env: Any) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_SAP_JOB_SCHEDULING_DEFAULT"])
    conn["extra"]["service_key"] = json.dumps({"credentials": conn["extra"]["service_key"]}, indent=2)
    os.environ[f"AIRFLOW_CONN_{TEMP_ID.upper()}"] = json.dumps(conn)
    ok, message = SapJobSchedulingHook(TEMP_ID).test_connection()
    assert ok, message
