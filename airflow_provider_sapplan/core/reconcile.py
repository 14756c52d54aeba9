"""Starting remote work when its answer may be lost: ask before sending it again.

The HTTP core never resends a request that starts work once it may have reached the platform (a
5xx or a broken connection after sending): the platform may have acted. Where the platform can be
asked whether the work started (the job is ours, its state says so), a caller can do better than
failing the try: :func:`send_or_reconcile` asks, and sends once more only when the answer is no.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from airflow_provider_sapplan.exceptions import NetworkError, ServiceUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Failures after which the platform may or may not have acted on the request.
AMBIGUOUS = (ServiceUnavailableError, NetworkError)


def send_or_reconcile(send: Callable[[], T], started: Callable[[], bool], *, what: str, resends: int = 1) -> T | None:
    """``send()``; if its answer is lost, ``started()`` decides between done (None) and sending again.

    At most ``resends`` more sends, each only after the platform said the work had not started, so
    the work is never started twice. When the question itself fails, the original error is raised.
    """
    for attempt in range(resends + 1):
        try:
            return send()
        except AMBIGUOUS as err:
            try:
                already = started()
            except Exception:
                log.warning("%s: the answer was lost (%s) and the platform could not say if it acted.", what, err)
                raise err from None
            if already:
                log.warning("%s: the answer was lost (%s), but the platform had acted; continuing.", what, err)
                return None
            if attempt == resends:
                raise
            log.warning("%s: the answer was lost (%s) and the platform had not acted; sending it again.", what, err)
    raise AssertionError("unreachable")  # pragma: no cover


def redo_disposable(work: Callable[[], T], *, what: str, redos: int = 2) -> T:
    """``work()``, done again (at most ``redos`` times) when an answer inside it is lost.

    For work whose partial result is thrown away when it fails and does nothing until a later step
    commits it (staging rows in a job that is deleted on failure and not yet run): doing it again
    cannot do anything twice, where failing the try would only make Airflow do the same later.
    """
    for attempt in range(redos + 1):
        try:
            return work()
        except AMBIGUOUS as err:
            if attempt == redos:
                raise
            log.warning("%s: an answer was lost (%s); the partial work was discarded, doing it again.", what, err)
    raise AssertionError("unreachable")  # pragma: no cover
