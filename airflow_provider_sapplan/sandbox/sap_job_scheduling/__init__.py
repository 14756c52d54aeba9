"""SAP BTP Job Scheduling Service, emulated: XSUAA token endpoints and the REST API (jobs, schedules, runs).

Faithful to SAP's documentation (SAP-docs/btp-job-scheduling-service, see ``shared/reference``): the
same paths under the service key's ``url``, the ``{"total","results","prev_url","next_url"}``
envelope with ``page_size``/``offset`` (default 10, jobs at most 100), the documented error body
``{"code","message","type","detailedError"}``, ``data`` echoed back as a JSON *string*, auto-increment
job ``_id`` and UUID ``scheduleId``/``runId``, the run state machine (runStatus/runState)
SCHEDULED/SCHEDULED -> RUNNING/TRIGGERED (-> RUNNING/ACK_RECVD for asynchronous actions) ->
COMPLETED/SUCCESS | ERROR | REQUEST_ERROR | UNKNOWN, the two timestamp formats (``T``-separated in
the run log API, space-separated in ``displayLogs`` and schedules), the 100 KB body limit (413)
and one-time schedules deactivated once their run completed.

:class:`JobSchedulingBackend` holds the state and is scriptable from Python
(``server.sap_job_scheduling``); :class:`SapJobSchedulingPlatform` renders it over HTTP under
``/sap-job-scheduling/uaa`` (client secret), ``/sap-job-scheduling/uaa-cert`` (x509) and
``/sap-job-scheduling/api`` (the service key's ``url``), with a control API under
``/_sandbox/sap_job_scheduling``. Nothing calls the jobs' action URLs: the outcome of a run is
configured per job (``success``, ``error``, ``request_error``, ``async``, ``async_timeout``) and
run states are computed lazily from timestamps, like Anaplan tasks, so no background thread is
needed.

Deliberate simplifications (documented for test authors):

- only one-time (``time``) schedules produce runs, exactly one each; ``cron``, ``repeatInterval``
  and ``repeatAt`` schedules are validated and stored but stay inert (``nextRunAt`` null);
- ``time`` understands ``now``, ``in N minutes`` / ``N minutes from now`` (seconds to weeks; the
  offset is an emulated duration, scaled by ``time_scale``), ISO-8601 and RFC 2822 (absolute
  times are wall-clock, never scaled); other human-readable texts ("tomorrow at 2am") answer 400;
- the x509 token endpoint cannot verify the client certificate (the sandbox speaks plain HTTP):
  it issues a token for the known ``client_id``;
- tokens live ``43199`` s like XSUAA's, unless the server was started with a ``token_ttl`` other
  than its default (then that one, so short-expiry tests cover every platform at once);
- rate limits come from the server's generic fault rules (429 ``retry-after``, 503
  ``throttling``); :meth:`JobSchedulingBackend.set_throttling` adds the ``throttling`` header
  (and the delay) to successful answers, as the service does near its limits.

Layout: :mod:`.models` (ids, constants, parsing, data classes), :mod:`.backend`
(:class:`JobSchedulingBackend`, the state machine; plain Python) and :mod:`.routes`
(:class:`SapJobSchedulingPlatform`, the HTTP routes).
"""

from __future__ import annotations

from .backend import JobSchedulingBackend
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
    JobSchedulingError,
)
from .routes import SapJobSchedulingPlatform

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
