"""SAP Analytics Cloud, emulated: token endpoint (client credentials and refresh-token grant), CSRF
sessions, the Data Import API, Multi Actions and the internal data-management service.

State lives in :mod:`.models` (scriptable from tests as ``server.platforms["sap_analytics_cloud"].backend``),
HTTP in :mod:`.routes`. Control API under ``/_sandbox/sap_analytics_cloud``: ``GET``/``POST /config``
(see :class:`.models.SacConfig`), ``POST /expire_tokens``, ``POST /drop_sessions``, ``GET /jobs``.
"""

from __future__ import annotations

import json

from ..platform import Platform
from ..routing import Mount
from .models import (
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    MAPPING_ID,
    MODEL_ID,
    MODEL_NAME,
    MULTI_ACTION_ID,
    REFRESH_TOKEN,
    SCHEDULE_ID,
    TENANT,
    USER_CLIENT_ID,
    USER_CLIENT_SECRET,
    SacBackend,
)
from .routes import TENANT_PREFIX, TOKEN_PREFIX, SacRoutes

__all__ = [
    "API_CLIENT_ID",
    "API_CLIENT_SECRET",
    "MAPPING_ID",
    "MODEL_ID",
    "MODEL_NAME",
    "MULTI_ACTION_ID",
    "REFRESH_TOKEN",
    "SCHEDULE_ID",
    "TENANT",
    "USER_CLIENT_ID",
    "USER_CLIENT_SECRET",
    "SacBackend",
    "SapAnalyticsCloudPlatform",
    "sandbox_connection",
]


def sandbox_connection(base_url: str, *, user: bool = True) -> dict:
    """An Airflow connection (JSON form) for this fake: user-context (refresh token) or API client."""
    extra = {"token_url": f"{base_url}{TOKEN_PREFIX}/token", "tenant": TENANT}
    if user:
        extra["refresh_token"] = REFRESH_TOKEN
    return {
        "conn_type": "sap_analytics_cloud",
        "host": f"{base_url}{TENANT_PREFIX}",
        "login": USER_CLIENT_ID if user else API_CLIENT_ID,
        "password": USER_CLIENT_SECRET if user else API_CLIENT_SECRET,
        "extra": extra,
    }


class SapAnalyticsCloudPlatform(Platform):
    """HTTP face of :class:`SacBackend`."""

    name = "sap_analytics_cloud"
    title = "SAP Analytics Cloud (Data Import API, Multi Actions, data-management schedules)"
    backend_class = SacBackend

    @property
    def backend(self) -> SacBackend:
        return self._backend

    def mounts(self) -> list[Mount]:
        return SacRoutes(self._backend, self.name).mounts()

    def connection_hints(self, base_url: str) -> list[str]:
        conn = sandbox_connection(base_url)
        return [
            f"# {self.title}: API client {API_CLIENT_ID} / {API_CLIENT_SECRET}; interactive client "
            f"{USER_CLIENT_ID} / {USER_CLIENT_SECRET} with refresh token {REFRESH_TOKEN}; model {MODEL_ID} "
            f"({MODEL_NAME}), schedule {SCHEDULE_ID} mapping {MAPPING_ID}, Multi Action {MULTI_ACTION_ID}",
            f"export AIRFLOW_CONN_SAP_ANALYTICS_CLOUD_DEFAULT='{json.dumps(conn)}'",
        ]
