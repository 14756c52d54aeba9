"""core.odata: envelopes, paging, dates, filter literals and error messages through core error mapping."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_sapplan.core import odata
from airflow_provider_sapplan.core.errors import map_http_error
from airflow_provider_sapplan.core.http import ClientConfig, HttpClient
from airflow_provider_sapplan.exceptions import NotFoundError, SapplanError


def test_envelopes() -> None:
    assert odata.results({"d": {"results": [{"Id": "a"}, {"Id": "b"}]}}) == [{"Id": "a"}, {"Id": "b"}]
    assert odata.results({"d": [{"Id": "a"}]}) == [{"Id": "a"}]
    assert odata.results([{"Id": "bare"}]) == [{"Id": "bare"}]
    assert odata.results({"d": {}}) == []
    assert odata.entity({"d": {"Id": "x", "Status": "STARTED"}}) == {"Id": "x", "Status": "STARTED"}
    assert odata.entity({"d": {"results": [{"Id": "only"}]}}) == {"Id": "only"}
    assert odata.entity({"Id": "plain"}) == {"Id": "plain"}
    assert odata.total_count({"d": {"results": [], "__count": "1234"}}) == 1234
    assert odata.next_link({"d": {"results": [], "__next": "MessageProcessingLogs?$skiptoken=1000"}}) == (
        "MessageProcessingLogs?$skiptoken=1000"
    )
    assert odata.next_link({"d": {"results": []}}) is None


def test_dates() -> None:
    assert odata.parse_date("/Date(1522069440003)/") == datetime(2018, 3, 26, 13, 4, 0, 3000, tzinfo=timezone.utc)
    assert odata.parse_date("/Date(1522069440003+0000)/") == odata.parse_date("/Date(1522069440003)/")
    assert odata.parse_date("2026-01-31T08:00:00Z") == datetime(2026, 1, 31, 8, tzinfo=timezone.utc)
    assert odata.parse_date(None) is None and odata.parse_date("garbage") is None
    assert odata.format_date(datetime(2018, 3, 26, 13, 4, 0, 3000, tzinfo=timezone.utc)) == "/Date(1522069440003)/"


def test_datetime_literals_are_utc_without_offset() -> None:
    berlin = timezone(timedelta(hours=1))
    assert odata.datetime_literal(datetime(2026, 1, 31, 9, 0, tzinfo=berlin)) == "datetime'2026-01-31T08:00:00'"
    assert odata.datetime_literal(datetime(2026, 1, 31, 8, 0)) == "datetime'2026-01-31T08:00:00'"
    assert odata.datetime_literal("2026-01-31T09:00:00+01:00") == "datetime'2026-01-31T08:00:00'"
    assert odata.datetime_literal(datetime(2026, 1, 31, 8, 0, 0, 250000)) == "datetime'2026-01-31T08:00:00.250'"
    assert odata.datetime_literal(date(2026, 1, 31)) == "datetime'2026-01-31T00:00:00'"
    with pytest.raises(ValueError, match="ISO-8601"):
        odata.datetime_literal("yesterday")
    assert odata.string_literal("O'Brien") == "'O''Brien'"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"code": "Not Found", "message": {"lang": "en", "value": "Artifact X does not exist."}}},
         "Artifact X does not exist. (Not Found)"),
        ({"error": {"code": "X", "message": "v4 style"}}, "v4 style (X)"),
        ({"error": {"innererror": {"errordetails": [{"message": "first"}, {"message": "second"}]}}}, "first; second"),
        ({"message": "not odata"}, None),
        ("not json", None),
    ],
)  # fmt: skip
def test_odata_error_message(body: Any, expected: str | None) -> None:
    assert odata.odata_error_message(body) == expected


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b'{"error":{"code":"Bad Request","message":{"lang":"en","value":"Runtime profile mismatch"}}}',
         "HTTP 400: Runtime profile mismatch (Bad Request)."),
        (b"CSRF token validation failed", "HTTP 400: CSRF token validation failed."),
        (b"<html><body>Sign in</body></html>", "HTTP 400: (an HTML page)."),
    ],
)  # fmt: skip
def test_core_error_mapping_shows_the_server_message(body: bytes, shown: str) -> None:
    error = map_http_error(platform="P", method="POST", url="https://h/api/v1/X", status=400, body=body)
    assert shown in error.message


def test_iterate_pages_follows_next_links(requests_mock: Any) -> None:
    base = "https://tenant.test/api/v1"
    requests_mock.get(
        f"{base}/MessageProcessingLogs",
        [
            {"json": {"d": {"results": [{"n": 1}, {"n": 2}], "__next": "MessageProcessingLogs?$skiptoken=2"}}},
            {"json": {"d": {"results": [{"n": 3}], "__next": f"{base}/MessageProcessingLogs?$skiptoken=3&x=1"}}},
            {"json": {"d": {"results": [{"n": 4}]}}},
        ],
    )
    client = HttpClient(ClientConfig(platform="P", base_url=base))
    items = list(odata.iterate_pages(lambda p, q: client.get_json(p, params=q), "MessageProcessingLogs", {"$top": "9"}))
    assert [i["n"] for i in items] == [1, 2, 3, 4]
    queries = [r.qs for r in requests_mock.request_history]
    assert queries[0] == {"$top": ["9"]}
    assert queries[1] == {"$skiptoken": ["2"]} and queries[2] == {"$skiptoken": ["3"], "x": ["1"]}


def test_iterate_pages_stops_on_a_self_link(requests_mock: Any) -> None:
    base = "https://tenant.test/api/v1"
    requests_mock.get(f"{base}/X", json={"d": {"results": [{"n": 1}], "__next": "X?$skiptoken=1"}})
    client = HttpClient(ClientConfig(platform="P", base_url=base))
    assert len(list(odata.iterate_pages(lambda p, q: client.get_json(p, params=q), "X"))) == 2


def test_odata_404_maps_to_not_found_with_text(requests_mock: Any) -> None:
    base = "https://tenant.test/api/v1"
    requests_mock.get(
        f"{base}/IntegrationRuntimeArtifacts('X')",
        status_code=404,
        json={"error": {"code": "Not Found", "message": {"lang": "en", "value": "Artifact X is not deployed"}}},
    )
    client = HttpClient(ClientConfig(platform="P", base_url=base))
    with pytest.raises(NotFoundError, match="Artifact X is not deployed"):
        client.get_json("IntegrationRuntimeArtifacts('X')")
    assert issubclass(NotFoundError, SapplanError)
