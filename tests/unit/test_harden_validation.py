"""Issue 8.6 / 8.9 / 8.10 / 8.11 / 8.13: the core validators and what the hooks accept (the good side)."""

from __future__ import annotations

import datetime
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_sapplan.core import validation as v
from airflow_provider_sapplan.core.errors import EXHAUSTED_HINTS, after_retries, map_http_error
from airflow_provider_sapplan.core.http import ClientConfig
from airflow_provider_sapplan.core.retry import RetryPolicy
from airflow_provider_sapplan.core.tls import read_pem
from airflow_provider_sapplan.exceptions import (
    ConnectionConfigError,
    InvalidRequestError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
)
from airflow_provider_sapplan.hooks.anaplan import ANAPLAN_RETRY_POLICY, AnaplanHook
from airflow_provider_sapplan.hooks.sap_job_scheduling import SapJobSchedulingHook, validate_cron
from tests.conftest import ANAPLAN_API, ANAPLAN_AUTH, set_connection

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
JSS_API = "https://jobscheduler-rest.cfapps.test"
UAA = "https://tenant.authentication.test"


# -- argument validators -----------------------------------------------------------------------------------


def test_as_json_object_accepts_dicts_and_json_object_strings() -> None:
    assert v.as_json_object({"a": 1}, "data") == {"a": 1}
    assert v.as_json_object('{"a": [1, 2]}', "data") == {"a": [1, 2]}
    assert v.as_json_object(None, "data") is None


def test_as_json_object_names_native_rendering_for_a_python_repr() -> None:
    with pytest.raises(v.ArgumentError, match=r"render_template_as_native_obj=True") as info:
        v.as_json_object("{'region': 'EMEA'}", "mapping_parameters")
    assert info.value.message.startswith("mapping_parameters must be a dict")
    assert isinstance(info.value, ValueError) and isinstance(info.value, PermanentError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(10, 10.0), ("10", 10.0), (" 2.5 ", 2.5), (datetime.timedelta(minutes=2), 120.0)],
)
def test_as_duration_accepts_numbers_numeric_text_and_timedeltas(value: Any, expected: float) -> None:
    assert v.as_duration(value, "poll_interval") == expected


@pytest.mark.parametrize("value", ["10s", "5m", "", True, None, [], -1, 0, float("inf")])
def test_as_duration_refuses_the_rest(value: Any) -> None:
    with pytest.raises(v.ArgumentError, match="poll_interval"):
        v.as_duration(value, "poll_interval")


def test_positive_number_bounds() -> None:
    assert v.positive_number(0, "x", allow_zero=True) == 0
    assert v.positive_number(5, "x", maximum=5) == 5
    with pytest.raises(v.ArgumentError, match="at most 5"):
        v.positive_number(6, "x", maximum=5)


def test_as_bool_is_strict_unless_told_otherwise() -> None:
    assert v.as_bool(False, "active") is False
    assert v.as_bool("False", "active", accept_strings=True) is False
    assert v.as_bool(" true ", "active", accept_strings=True) is True
    with pytest.raises(v.ArgumentError):
        v.as_bool("no", "active", accept_strings=True)
    with pytest.raises(v.ArgumentError, match="counts as True"):
        v.as_bool("false", "active")


@pytest.mark.parametrize(("value", "expected"), [(42, 42), ("42", 42), (" 7 ", 7), (3.0, 3)])
def test_as_int_id_accepts_whole_numbers(value: Any, expected: int) -> None:
    assert v.as_int_id(value, "job_id") == expected


@pytest.mark.parametrize("value", ["abc", 1.5, True, 0, None, "4a"])
def test_as_int_id_refuses_the_rest(value: Any) -> None:
    with pytest.raises(v.ArgumentError, match="job_id"):
        v.as_int_id(value, "job_id")


def test_as_chunk_size_accepts_bytes_within_range() -> None:
    assert v.as_chunk_size(2 * 2**20, "chunk_size", minimum=2**20, maximum=50 * 2**20) == 2 * 2**20
    assert v.as_chunk_size(str(2**20), "chunk_size", minimum=2**20, maximum=50 * 2**20) == 2**20
    with pytest.raises(v.ArgumentError, match="between"):
        v.as_chunk_size(51 * 2**20, "chunk_size", minimum=2**20, maximum=50 * 2**20)


# -- connection validators ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://api.anaplan.com/2/0/", "https://api.anaplan.com/2/0"),
        (" http://127.0.0.1:8080 ", "http://127.0.0.1:8080"),
        ("HTTPS://Auth.Anaplan.com", "HTTPS://Auth.Anaplan.com"),
    ],
)
def test_check_url_accepts_absolute_http_urls(value: str, expected: str) -> None:
    assert v.check_url(value, "extra 'api_url'") == expected


def test_check_url_names_the_field_and_the_connection() -> None:
    with pytest.raises(ConnectionConfigError, match=r"^Connection 'x': extra 'api_url' 'api.test' has no scheme"):
        v.check_url("api.test", "extra 'api_url'", connection="connection 'x'")


def test_parse_timeout_value_forms() -> None:
    assert v.parse_timeout_value(None) is None
    assert v.parse_timeout_value(60) == (10.0, 60.0)
    assert v.parse_timeout_value(5) == (5.0, 5.0)
    assert v.parse_timeout_value("[3, 30]") == (3.0, 30.0)
    assert v.parse_timeout_value([3, 30]) == (3.0, 30.0)


def test_check_verify_forms(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text(CERT)
    assert v.check_verify("false") is False
    assert v.check_verify(True) is True
    assert v.check_verify(str(bundle)) == str(bundle)


def test_validate_client_config_refuses_a_non_positive_timeout_and_foreign_auth() -> None:
    with pytest.raises(ConnectionConfigError, match="timeout"):
        v.validate_client_config(ClientConfig(platform="X", base_url="https://x.test", timeout=(0.0, 10.0)))

    class Homemade:
        cache_key = "x"

    with pytest.raises(TypeError, match="TokenAuth"):
        v.validate_client_config(ClientConfig(platform="X", base_url="https://x.test", auth=Homemade()))  # type: ignore[arg-type]


def test_verify_text_false_reaches_the_client_as_a_boolean(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(
        monkeypatch,
        "ana",
        conn_type="anaplan",
        login="u",
        password="p",
        extra={"api_url": ANAPLAN_API, "auth_url": ANAPLAN_AUTH, "verify": "false"},
    )
    assert AnaplanHook("ana").get_conn().config.verify is False


def test_a_connection_of_a_foreign_type_is_still_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the provider's own other types are refused; e.g. a generic/http connection still works."""
    set_connection(monkeypatch, "gen", conn_type="generic", login="u", password="p", extra={"api_url": ANAPLAN_API})
    assert AnaplanHook("gen").get_conn().config.base_url == ANAPLAN_API


# -- PEM, service keys ------------------------------------------------------------------------------------------


def test_pem_with_escaped_newlines_is_accepted() -> None:
    escaped = CERT.replace("\n", "\\n")
    assert read_pem(escaped, "extra 'certificate'", "certificate") == CERT + "\n"


def test_pem_from_a_file_path(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text(KEY)
    assert read_pem(str(path), "extra 'private_key'", "private key") == KEY + "\n"


def test_anaplan_certificate_auth_accepts_escaped_pem(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    from tests.unit.test_harden_auth import _key_and_cert

    _, cert, key = _key_and_cert()
    set_connection(
        monkeypatch,
        "ana_esc",
        conn_type="anaplan",
        extra={
            "auth_type": "certificate",
            "certificate": cert.replace("\n", "\\n"),
            "private_key": key.replace("\n", "\\n"),
            "auth_url": ANAPLAN_AUTH,
            "api_url": ANAPLAN_API,
        },
    )
    expires = int((time.time() + 2100) * 1000)
    requests_mock.post(
        f"{ANAPLAN_AUTH}/token/authenticate", json={"tokenInfo": {"tokenValue": "t", "expiresAt": expires}}
    )
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"workspaces": []})
    assert AnaplanHook("ana_esc").list_workspaces() == []


def test_missing_key_file_is_never_sent(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    key = {"url": JSS_API, "uaa": {"clientid": "c", "certificate": "/nope/cert.pem", "key": KEY, "certurl": UAA}}
    set_connection(monkeypatch, "jss", conn_type="sap_job_scheduling", extra={"service_key": key})
    with pytest.raises(ConnectionConfigError, match=r"uaa.certificate': no file at '/nope/cert.pem'"):
        SapJobSchedulingHook("jss").get_job(1)
    assert requests_mock.call_count == 0


def test_cf_service_key_wrapper_is_accepted(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    wrapped = {"credentials": {"url": JSS_API, "uaa": {"url": UAA, "clientid": "c", "clientsecret": "s"}}}
    set_connection(monkeypatch, "jss", conn_type="sap_job_scheduling", extra={"service_key": json.dumps(wrapped)})
    requests_mock.post(f"{UAA}/oauth/token", json={"access_token": "jwt"})
    requests_mock.get(f"{JSS_API}/scheduler/jobs/1", json={"_id": 1})
    assert SapJobSchedulingHook("jss").get_job(1) == {"_id": 1}


# -- SAP cron --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cron",
    [
        "* * * * 6 0 0",
        "* * * * * */10 0",
        "* * * * * * */10",
        "2026 1:6 1,15 * 9 30 0",
        "* * -1 * 23 59 59",
        "* * * mon 8 0 0",
        "* * * 2.sun 8 0 0",
        "* * * mon:fri 8 0 0",
        "* jan * * 0 0 0",
    ],
)
def test_valid_sap_crons_pass(cron: str) -> None:
    validate_cron(cron)


def test_invalid_cron_is_refused_before_any_request(monkeypatch: pytest.MonkeyPatch, requests_mock: Any) -> None:
    set_connection(
        monkeypatch,
        "jss",
        conn_type="sap_job_scheduling",
        extra={"service_key": {"url": JSS_API, "uaa": {"url": UAA, "clientid": "c", "clientsecret": "s"}}},
    )
    with pytest.raises(InvalidRequestError, match="Hour 25 is outside 0-23"):
        SapJobSchedulingHook("jss").create_job(
            {"name": "j", "action": "https://a.test", "httpMethod": "GET", "schedules": [{"cron": "* * * * 25 0 0"}]}
        )
    assert requests_mock.call_count == 0


# -- hints that depend on retries (8.13) and wrong URLs (8.10) -------------------------------------------------


def test_hints_do_not_claim_retries_that_have_not_happened() -> None:
    for status in (409, 423, 429):
        message = map_http_error(platform="P", method="GET", url="https://x/y", status=status, body=None).message
        assert "retr" not in message and "attempts" not in message
    final = map_http_error(platform="P", method="GET", url="https://x/y", status=429, body=None, attempts=6)
    assert "stayed hit through 6 attempts" in final.message and isinstance(final, RateLimitedError)


def test_after_retries_appends_the_exhausted_hint_once() -> None:
    first = map_http_error(platform="P", method="GET", url="https://x/y", status=409, body=None)
    final = after_retries(first, 8)
    assert final.message.endswith(EXHAUSTED_HINTS[409].format(attempts=8))
    assert after_retries(final, 8).message == final.message
    assert after_retries(first, 1) is first


def test_first_retry_log_of_a_rate_limited_call_is_neutral(
    monkeypatch: pytest.MonkeyPatch, requests_mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("airflow_provider_sapplan.core.http.time.sleep", lambda seconds: None)
    set_connection(
        monkeypatch,
        "ana",
        conn_type="anaplan",
        login="u",
        password="p",
        extra={"api_url": ANAPLAN_API, "auth_url": ANAPLAN_AUTH},
    )
    expires = int((time.time() + 2100) * 1000)
    requests_mock.post(
        f"{ANAPLAN_AUTH}/token/authenticate", json={"tokenInfo": {"tokenValue": "t", "expiresAt": expires}}
    )
    requests_mock.get(f"{ANAPLAN_API}/workspaces", [{"status_code": 429}, {"json": {"workspaces": []}}])
    with caplog.at_level(logging.WARNING, logger="airflow_provider_sapplan.core.http"):
        AnaplanHook("ana").list_workspaces()
    retry_lines = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retry_lines) == 1
    assert "every retry" not in retry_lines[0] and "stayed" not in retry_lines[0]


def test_an_html_404_is_a_wrong_url_not_a_missing_object() -> None:
    error = map_http_error(
        platform="Anaplan",
        method="GET",
        url="https://x/2/0/workspaces/w/models/m/files",
        status=404,
        body=b"<!DOCTYPE html><html><body>Not Found</body></html>",
        hints={0: "extra 'api_url'", 404: "Check the workspace, model and object ids"},
    )
    assert not isinstance(error, NotFoundError)
    assert "not the platform's API URL; check extra 'api_url'" in error.message
    assert "workspace, model and object ids" not in error.message


def test_json_404_keeps_the_id_hint() -> None:
    error = map_http_error(
        platform="Anaplan", method="GET", url="https://x/f", status=404, body=b'{"status": {"message": "nf"}}', hints={}
    )
    assert isinstance(error, NotFoundError)


# -- retry budget (8.6) ----------------------------------------------------------------------------------------


def test_retry_budgets_are_the_documented_figures() -> None:
    assert RetryPolicy().worst_case_wait() == 31
    assert RetryPolicy().worst_case_seconds(10) == 91
    assert ANAPLAN_RETRY_POLICY.worst_case_wait() == 246
    assert ANAPLAN_RETRY_POLICY.worst_case_seconds(10) == 326


def test_provider_connection_types_cover_every_declared_platform() -> None:
    from airflow_provider_sapplan.core.hook import provider_connection_types
    from airflow_provider_sapplan.get_provider_info import get_provider_info

    declared = {item["connection-type"] for item in get_provider_info()["connection-types"]}
    assert {"anaplan", "sap_job_scheduling"} <= declared <= provider_connection_types()


@pytest.mark.parametrize(("value", "expected"), [(4, 4), ("4", 4), (2.0, 2)])
def test_as_positive_int_accepts_counts(value: Any, expected: int) -> None:
    assert v.as_positive_int(value, "max_parallel", maximum=16) == expected


@pytest.mark.parametrize("value", [0, 17, -1, "x", True, 1.5, None])
def test_as_positive_int_refuses_the_rest(value: Any) -> None:
    with pytest.raises(v.ArgumentError, match="max_parallel"):
        v.as_positive_int(value, "max_parallel", maximum=16)
