"""What to type into each connection form, per platform: one table the form tests share.

Every connection type declared in ``airflow_provider_sapplan.connections.CONNECTION_FORMS`` needs an
entry in :data:`FORM_CASES` (a test fails until it has one). A new platform adds one function that,
given the sandbox's base URL, returns its :class:`FormCase`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

WORKSPACE_ID = "8a868cd97d1e2f3b017d2f4a5b6c0001"
MODEL_ID = "75A40874E6B64FA3AE0743278996850F"
# Not a real key: the form tests only check that PEM text survives, and that the hook reads it.
DUMMY_PEM = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n"
DUMMY_KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIIEdummy\n-----END PRIVATE KEY-----\n"


@dataclass(frozen=True)
class FormCase:
    """Values for one connection type.

    :param good: what an admin types: standard field names (``login``, ``password``, ``host``...) and
        extra field names, all as text. Test must succeed with them against the sandbox.
    :param bad: overrides of ``good`` with a wrong credential: Test must fail, saying so.
    :param variants: further override sets that take the hook through its other branches (certificate
        auth, lite plan, ...); the declaration/hook agreement test reads the connection with each.
    """

    good: Mapping[str, str]
    bad: Mapping[str, str]
    variants: tuple[Mapping[str, str], ...] = field(default=())


def _anaplan(url: str) -> FormCase:
    return FormCase(
        good={
            "login": "demo@example.com",
            "password": "demo",
            "auth_type": "basic",
            "auth_url": f"{url}/anaplan/auth",
            "api_url": f"{url}/anaplan/api/2/0",
            "workspace_id": WORKSPACE_ID,
            "model_id": MODEL_ID,
            "timeout": "30",
            "verify": "true",
            "requests_per_minute": "600",
        },
        bad={"password": "not-the-password"},
        variants=(
            {
                "auth_type": "certificate",
                "certificate": DUMMY_PEM,
                "private_key": DUMMY_KEY_PEM,
                "private_key_password": "key-pass",
                "encoded_data_format": "v1",
            },
        ),
    )


def _sap_job_scheduling(url: str) -> FormCase:
    def key(secret: str) -> str:
        return json.dumps(
            {
                "url": f"{url}/sap-job-scheduling/api",
                "uaa": {
                    "url": f"{url}/sap-job-scheduling/uaa",
                    "clientid": "sb-sandbox!b1|jobscheduler!b1",
                    "clientsecret": secret,
                },
            },
            indent=2,
        )

    return FormCase(
        good={
            "service_key": key("sandbox-secret"),
            "dashboard_url": f"{url}/sap-job-scheduling/dashboard",
            "timeout": "10, 30",
        },
        bad={"service_key": key("wrong-secret")},
        variants=(
            {
                "service_key": "",
                "lite_plan_url": f"{url}/sap-job-scheduling/api",
                "lite_plan_user": "sbss_user",
                "lite_plan_password": "lite-pass",
            },
        ),
    )


def _sap_cloud_integration(url: str) -> FormCase:
    def key(client: str, secret: str) -> str:
        oauth = {
            "clientid": client,
            "clientsecret": secret,
            "url": f"{url}/sap-cloud-integration",
            "tokenurl": f"{url}/sap-cloud-integration/oauth/token",
        }
        return json.dumps({"oauth": oauth}, indent=2)

    return FormCase(
        good={
            "service_key": key("sb-cpi-api!b1|it!b1", "cpi-api-secret"),
            "runtime_service_key": key("sb-cpi-flow!b1|it-rt!b1", "cpi-flow-secret"),
            "runtime_url": f"{url}/sap-cloud-integration",
            "web_ui_url": f"{url}/sap-cloud-integration/ui",
            "timeout": "10, 120",
        },
        bad={"service_key": key("sb-cpi-api!b1|it!b1", "wrong-secret")},
        variants=(
            {
                "service_key": "",
                "runtime_service_key": "",
                "host": f"{url}/sap-cloud-integration",
                "login": "cpi-user",
                "password": "cpi-password",
            },
        ),
    )


def _sap_data_intelligence(url: str) -> FormCase:
    return FormCase(
        good={
            "host": f"{url}/sap-data-intelligence",
            "login": "default\\etl_user",
            "password": "di-secret",
            "rms_api_path": "/app/rms/api/dt/v1",
            "timezone": "Europe/Berlin",
            "timeout": "10, 60",
        },
        bad={"password": "not-the-password"},
        variants=({"login": "etl_user", "tenant": "default"},),
    )


def _sap_analytics_cloud(url: str) -> FormCase:
    return FormCase(
        good={
            "host": f"{url}/sap-analytics-cloud/tenant",
            "login": "sb-sac-interactive-client",
            "password": "sac-interactive-secret",
            "token_url": f"{url}/sap-analytics-cloud/oauth/token",
            "tenant": "G",
            "refresh_token": "sac-sandbox-refresh-token",
            "timeout": "10, 120",
        },
        bad={"password": "not-the-secret"},
        variants=({"refresh_token": ""},),
    )


FORM_CASES: dict[str, Callable[[str], FormCase]] = {
    "anaplan": _anaplan,
    "sap_job_scheduling": _sap_job_scheduling,
    "sap_cloud_integration": _sap_cloud_integration,
    "sap_data_intelligence": _sap_data_intelligence,
    "sap_analytics_cloud": _sap_analytics_cloud,
}


def form_case(conn_type: str, url: str) -> FormCase:
    """The values for ``conn_type``, with the sandbox at ``url``."""
    try:
        return FORM_CASES[conn_type](url)
    except KeyError:
        raise AssertionError(
            f"No form values for connection type {conn_type!r}: add it to FORM_CASES in {__name__}."
        ) from None
