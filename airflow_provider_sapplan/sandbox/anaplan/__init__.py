"""Anaplan sandbox: an in-process fake of Anaplan's authentication and Integration API v2.

The platform's state and state machines live in plain-Python modules (no HTTP), its HTTP routes
in :mod:`.routes`. Import from here: other code needs only the constants, the backend and the
:class:`AnaplanPlatform` that :mod:`airflow_provider_sapplan.sandbox.server` mounts.
"""

from __future__ import annotations

from .models import (
    ACTUALS_FILE_ID,
    API_PREFIX,
    AUTH_PREFIX,
    CONTROL_PREFIX,
    MODEL_ID,
    USER_EMAIL,
    USER_PASSWORD,
    WORKSPACE_ID,
    ActionConfig,
    AnaplanBackend,
    AnaplanError,
    AnaplanPlatform,
)

__all__ = [
    "ACTUALS_FILE_ID",
    "API_PREFIX",
    "AUTH_PREFIX",
    "CONTROL_PREFIX",
    "MODEL_ID",
    "USER_EMAIL",
    "USER_PASSWORD",
    "WORKSPACE_ID",
    "ActionConfig",
    "AnaplanBackend",
    "AnaplanError",
    "AnaplanPlatform",
]
