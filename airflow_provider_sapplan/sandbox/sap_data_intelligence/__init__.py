"""SAP Data Intelligence in the sandbox: RMS replication flows and pipeline graphs.

Served under ``/sap-data-intelligence`` (the tenant URL); control API under
``/_sandbox/sap_data_intelligence``. Basic auth ``default\\etl_user`` / ``di-secret``.
"""

from __future__ import annotations

import json
from typing import ClassVar

from ..platform import Platform
from ..routing import Mount
from .models import PASSWORD, TENANT, USER, DataIntelligenceBackend
from .routes import PREFIX, Routes, api_error, guard

CONTROL_PREFIX = "/_sandbox/sap_data_intelligence"

__all__ = ["DataIntelligenceBackend", "SapDataIntelligencePlatform"]


class SapDataIntelligencePlatform(Platform):
    """The DI tenant: ``/sap-data-intelligence/app/rms/...`` and ``/sap-data-intelligence/app/pipeline-modeler/...``."""

    name: ClassVar[str] = "sap_data_intelligence"
    title: ClassVar[str] = "SAP Data Intelligence"
    backend_class: ClassVar[type] = DataIntelligenceBackend

    @property
    def backend(self) -> DataIntelligenceBackend:
        return self._backend

    def mounts(self) -> list[Mount]:
        routes = Routes(self._backend)
        return [
            Mount(
                prefix=PREFIX,
                platform=self.name,
                routes=routes.api(),
                guard=lambda request: guard(request, self.context.credentials),
                errors=api_error,
            ),
            Mount(prefix=CONTROL_PREFIX, platform=self.name, control=True, routes=routes.control()),
        ]

    def connection_hints(self, base_url: str) -> list[str]:
        conn = {
            "conn_type": "sap_data_intelligence",
            "host": f"{base_url}{PREFIX}",
            "login": f"{TENANT}\\{USER}",
            "password": PASSWORD,
            "extra": {"timezone": self._backend.config.timezone},
        }
        return [
            f"# {self.title}: basic auth {TENANT}\\{USER} / {PASSWORD}; flows RF_SALES, RF_MARA",
            f"export AIRFLOW_CONN_SAP_DATA_INTELLIGENCE_DEFAULT='{json.dumps(conn)}'",
        ]
