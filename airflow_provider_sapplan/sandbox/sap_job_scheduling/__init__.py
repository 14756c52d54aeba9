"""SAP BTP Job Scheduling sandbox: an in-process fake of the service's REST API and its XSUAA.

The service's state and run state machine live in plain-Python modules (no HTTP), its HTTP routes
in :mod:`.routes`. Import from here: other code needs only the constants, the backend and the
:class:`SapJobSchedulingPlatform` that :mod:`airflow_provider_sapplan.sandbox.server` mounts.
"""

from __future__ import annotations

from .models import (
    API_PREFIX,
    CLIENT_ID,
    CLIENT_SECRET,
    CONTROL_PREFIX,
    LITE_PASSWORD,
    LITE_USER,
    SEED_JOB_ID,
    SEED_JOB_NAME,
    UAA_CERT_PREFIX,
    UAA_PREFIX,
    JobConfig,
    JobSchedulingBackend,
    JobSchedulingError,
    SapJobSchedulingPlatform,
)

__all__ = [
    "API_PREFIX",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CONTROL_PREFIX",
    "LITE_PASSWORD",
    "LITE_USER",
    "SEED_JOB_ID",
    "SEED_JOB_NAME",
    "UAA_CERT_PREFIX",
    "UAA_PREFIX",
    "JobConfig",
    "JobSchedulingBackend",
    "JobSchedulingError",
    "SapJobSchedulingPlatform",
]
