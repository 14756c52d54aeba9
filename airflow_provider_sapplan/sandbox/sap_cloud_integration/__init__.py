"""Emulated SAP Cloud Integration tenant (state in :mod:`.models`, HTTP in :mod:`.routes`)."""

from __future__ import annotations

from .models import (
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    BASIC_PASSWORD,
    BASIC_USER,
    FLOW_CLIENT_ID,
    FLOW_CLIENT_SECRET,
    SEED_ARTIFACT,
    SEED_PACKAGE,
    CloudIntegrationBackend,
    CpiError,
    DeployConfig,
    FlowConfig,
    seed_zip,
)
from .routes import (
    API_PREFIX,
    CONTROL_PREFIX,
    HTTP_PREFIX,
    OAUTH_PREFIX,
    PREFIX,
    SapCloudIntegrationPlatform,
    sandbox_extra,
)

__all__ = [
    "API_CLIENT_ID",
    "API_CLIENT_SECRET",
    "API_PREFIX",
    "BASIC_PASSWORD",
    "BASIC_USER",
    "CONTROL_PREFIX",
    "FLOW_CLIENT_ID",
    "FLOW_CLIENT_SECRET",
    "HTTP_PREFIX",
    "OAUTH_PREFIX",
    "PREFIX",
    "SEED_ARTIFACT",
    "SEED_PACKAGE",
    "CloudIntegrationBackend",
    "CpiError",
    "DeployConfig",
    "FlowConfig",
    "SapCloudIntegrationPlatform",
    "sandbox_extra",
    "seed_zip",
]
