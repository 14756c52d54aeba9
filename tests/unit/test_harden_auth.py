"""Issue 8.1 / 8.12: one token per credential (every identity-proving value keyed), auth failures fail fast."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from airflow_provider_sapplan.core.auth import (
    StaticHeaderAuth,
    Token,
    TokenAuth,
    TokenRequest,
    require_identity_key,
    secret_digest,
)
from airflow_provider_sapplan.exceptions import AuthenticationError
from airflow_provider_sapplan.hooks.anaplan import AnaplanAuth, AnaplanCredentials, AnaplanHook
from airflow_provider_sapplan.hooks.sap_job_scheduling import (
    SapJobSchedulingHook,
    ServiceKey,
    XsuaaClientCredentials,
)
from tests.certificates import pem_key, self_signed
from tests.conftest import ANAPLAN_API, ANAPLAN_AUTH, set_connection

AUTH_URL = f"{ANAPLAN_AUTH}/token/authenticate"
JSS_API = "https://jobscheduler-rest.cfapps.test"
CERT_URL = "https://tenant.authentication.cert.test"


def _key_and_cert(common_name: str = "svc") -> tuple[Any, str, str]:
    key, cert_pem = self_signed(common_name)
    return key, cert_pem, pem_key(key)


@pytest.fixture(scope="module")
def pems() -> dict[str, str]:
    _, cert, key_a = _key_and_cert()
    _, _, key_b = _key_and_cert()
    return {"cert": cert, "key_a": key_a, "key_b": key_b}


def _token_counter() -> Any:
    counter = itertools.count(1)

    def answer(request: Any, context: Any) -> dict[str, Any]:
        value = f"tok-{next(counter)}"
        return {"tokenInfo": {"tokenValue": value, "expiresAt": int((time.time() + 2100) * 1000)}}

    return answer


# -- 8.1: the key covers every identity-proving value ----------------------------------------------


def test_anaplan_connections_sharing_a_certificate_but_not_a_key_never_share_a_token(
    monkeypatch: pytest.MonkeyPatch, requests_mock: Any, pems: dict[str, str]
) -> None:
    for conn_id, key in (("cert_a", pems["key_a"]), ("cert_b", pems["key_b"])):
        set_connection(
            monkeypatch,
            conn_id,
            conn_type="anaplan",
            extra={
                "auth_type": "certificate",
                "certificate": pems["cert"],
                "private_key": key,
                "auth_url": ANAPLAN_AUTH,
                "api_url": ANAPLAN_API,
            },
        )
    requests_mock.post(AUTH_URL, json=_token_counter())
    requests_mock.get(f"{ANAPLAN_API}/workspaces", json={"workspaces": []})
    AnaplanHook("cert_a").list_workspaces()
    AnaplanHook("cert_b").list_workspaces()
    AnaplanHook("cert_a").list_workspaces()
    api_calls = [r for r in requests_mock.request_history if r.url.startswith(ANAPLAN_API)]
    assert [r.headers["Authorization"] for r in api_calls] == [
        "AnaplanAuthToken tok-1",
        "AnaplanAuthToken tok-2",
        "AnaplanAuthToken tok-1",
    ]
    assert sum(r.url == AUTH_URL for r in requests_mock.request_history) == 2


def test_xsuaa_x509_connections_sharing_a_certificate_but_not_a_key_never_share_a_token(
    monkeypatch: pytest.MonkeyPatch, requests_mock: Any, pems: dict[str, str]
) -> None:
    for conn_id, key in (("x509_a", pems["key_a"]), ("x509_b", pems["key_b"])):
        service_key = {
            "url": JSS_API,
            "uaa": {"clientid": "sb-1", "certificate": pems["cert"], "key": key, "certurl": CERT_URL},
        }
        set_connection(monkeypatch, conn_id, conn_type="sap_job_scheduling", extra={"service_key": service_key})
    counter = itertools.count(1)
    requests_mock.post(
        f"{CERT_URL}/oauth/token", json=lambda request, context: {"access_token": f"jwt-{next(counter)}"}
    )
    requests_mock.get(f"{JSS_API}/scheduler/jobs/1", json={"_id": 1})
    SapJobSchedulingHook("x509_a").get_job(1)
    SapJobSchedulingHook("x509_b").get_job(1)
    SapJobSchedulingHook("x509_a").get_job(1)
    api_calls = [r for r in requests_mock.request_history if r.url.startswith(JSS_API)]
    assert [r.headers["Authorization"] for r in api_calls] == ["Bearer jwt-1", "Bearer jwt-2", "Bearer jwt-1"]


def _anaplan(**changes: Any) -> str:
    base: dict[str, Any] = {
        "auth_type": "certificate",
        "auth_url": ANAPLAN_AUTH,
        "certificate": "CERT",
        "private_key": "KEY",
        "private_key_password": "kpw",
        "encoded_data_format": "v2",
    }
    base.update(changes)
    return AnaplanAuth(AnaplanCredentials(**base)).cache_key


def _anaplan_basic(**changes: Any) -> str:
    base: dict[str, Any] = {"auth_type": "basic", "auth_url": ANAPLAN_AUTH, "login": "u@x", "password": "pw"}
    base.update(changes)
    return AnaplanAuth(AnaplanCredentials(**base)).cache_key


def _xsuaa(**changes: Any) -> str:
    base: dict[str, Any] = {"url": JSS_API, "token_url": f"{CERT_URL}/oauth/token", "client_id": "sb-1"}
    base.update(changes)
    return XsuaaClientCredentials(ServiceKey(**base)).cache_key


@pytest.mark.parametrize(
    ("make", "first", "second"),
    [
        (_anaplan, {}, {"private_key": "OTHER KEY"}),
        (_anaplan, {}, {"private_key_password": "other"}),
        (_anaplan, {}, {"certificate": "OTHER CERT"}),
        (_anaplan, {}, {"encoded_data_format": "v1"}),
        (_anaplan, {}, {"auth_url": "https://auth.other.test"}),
        (_anaplan_basic, {}, {"password": "other"}),
        (_anaplan_basic, {}, {"login": "v@x"}),
        (_xsuaa, {"certificate": "C", "key": "K"}, {"certificate": "C", "key": "K2"}),
        (_xsuaa, {"certificate": "C", "key": "K"}, {"certificate": "C2", "key": "K"}),
        (_xsuaa, {"certificate": "C", "key": "K"}, {"certificate": "C", "key": "K", "client_id": "sb-2"}),
        (_xsuaa, {"client_secret": "s1"}, {"client_secret": "s2"}),
        (_xsuaa, {"client_secret": "s1"}, {"client_secret": "s1", "token_url": "https://other.test/oauth/token"}),
    ],
    ids=[
        "anaplan-key",
        "anaplan-key-password",
        "anaplan-cert",
        "anaplan-format",
        "anaplan-auth-url",
        "anaplan-basic-password",
        "anaplan-basic-user",
        "x509-key",
        "x509-cert",
        "x509-client-id",
        "client-secret",
        "token-url",
    ],
)
def test_every_identity_value_changes_the_cache_key(make: Any, first: dict, second: dict) -> None:
    assert make(**first) != make(**second)
    assert make(**first) == make(**first)


def test_cache_key_is_a_digest_never_holding_a_secret() -> None:
    key = _anaplan(private_key="-----BEGIN PRIVATE KEY-----SECRET", private_key_password="hunter2")
    assert len(key) == 64 and "SECRET" not in key and "hunter2" not in key
    auth = AnaplanAuth(AnaplanCredentials("basic", ANAPLAN_AUTH, login="u", password="hunter2"))
    assert "hunter2" not in repr(auth.identity())
    assert secret_digest("hunter2") in auth.identity()


def test_lite_plan_basic_key_covers_user_and_password() -> None:
    one = StaticHeaderAuth({"Authorization": "Basic x"}, identity=("u", secret_digest("a")))
    two = StaticHeaderAuth({"Authorization": "Basic y"}, identity=("u", secret_digest("b")))
    assert one.cache_key != two.cache_key
    require_identity_key(one)


def test_an_auth_scheme_without_identity_cannot_be_built_or_used() -> None:
    class NoIdentity(TokenAuth):
        platform = "New"

        def authenticate_request(self) -> TokenRequest:
            return TokenRequest("POST", "https://x")

        def refresh_request(self, token: Token) -> TokenRequest | None:
            return None

        def parse_token(self, payload: Any) -> Token:
            return Token("t", time.time() + 60)

        def authorization_header(self, token: Token) -> dict[str, str]:
            return {}

    with pytest.raises(TypeError, match="identity"):
        NoIdentity()  # type: ignore[abstract]

    class DuckTyped:
        platform = "New"
        cache_key = "client-id"  # not a digest, and not derived from an identity

    with pytest.raises(TypeError, match="TokenAuth"):
        require_identity_key(DuckTyped())


# -- 8.12: authentication failures are not retried by Airflow -------------------------------------


def test_authentication_error_fails_the_task_without_retries() -> None:
    """Airflow 3's task runner (``except (AirflowFailException, ...)`` -> FAILED) and 2.11's
    ``_run_raw_task`` (``except (AirflowFailException, ...)`` -> ``handle_failure(force_fail=True)``) skip retries."""
    from airflow_provider_sapplan._compat import AIRFLOW_V_3_0_PLUS

    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.exceptions import AirflowFailException
    else:
        from airflow.exceptions import AirflowFailException

    err = AuthenticationError("rejected", platform="Anaplan", status_code=401)
    assert isinstance(err, AirflowFailException)
    import pickle

    clone = pickle.loads(pickle.dumps(err))
    assert isinstance(clone, AirflowFailException) and clone.status_code == 401


def test_rejected_credentials_reach_the_task_as_a_fail_exception(
    monkeypatch: pytest.MonkeyPatch, requests_mock: Any
) -> None:
    from airflow_provider_sapplan._compat import AIRFLOW_V_3_0_PLUS

    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.exceptions import AirflowFailException
    else:
        from airflow.exceptions import AirflowFailException
    set_connection(
        monkeypatch,
        "ana",
        conn_type="anaplan",
        login="u@x",
        password="pw",
        extra={"auth_url": ANAPLAN_AUTH, "api_url": ANAPLAN_API},
    )
    requests_mock.post(AUTH_URL, status_code=401, json={"statusMessage": "Login failed"})
    with pytest.raises(AirflowFailException):
        AnaplanHook("ana").list_workspaces()
    assert sum(r.url == AUTH_URL for r in requests_mock.request_history) == 1
