"""Anaplan, emulated: the authentication service and the Integration API v2 bulk endpoints.

Faithful to Anaplan's documentation (help.anaplan.com / apiary, see ``shared/reference``): the same
paths, status codes, JSON envelopes (``meta``/``status``, ``paging``), task state machine
(NOT_STARTED -> IN_PROGRESS -> COMPLETE, or CANCELLING -> CANCELLED), result details, dump files
and their replacement rules, model-busy behaviour, and the sharp edges real clients trip over
(POSTing a chunk count to an unknown file id silently creates a file; a replaced dump answers 404
while its task still says ``failureDumpAvailable: true``).

:class:`AnaplanBackend` holds the state and is scriptable from Python (``server.anaplan``);
:class:`AnaplanPlatform` renders it over HTTP under ``/anaplan/auth`` and ``/anaplan/api/2/0``,
with a control API under ``/_sandbox/anaplan``. Task state is computed lazily from timestamps:
whenever the backend is touched, tasks whose end time has passed are finalised in order (results,
dumps, export files), so no background thread is needed.

Layout: :mod:`.models` (ids, constants, data classes), :mod:`.backend` (:class:`AnaplanBackend`,
composed of :mod:`.auth` tokens, :mod:`.files` uploads/downloads/dumps and :mod:`.tasks` the task
state machine; all plain Python) and :mod:`.routes` (:class:`AnaplanPlatform`, the HTTP routes).
"""

from __future__ import annotations

from .backend import AnaplanBackend
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
    AnaplanError,
)
from .routes import AnaplanPlatform

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
