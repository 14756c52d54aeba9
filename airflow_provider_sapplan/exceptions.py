"""One error hierarchy for every platform of the provider.

Two branches matter to DAG authors: :class:`TransientError` (waiting and retrying may help: rate
limits, outages, a busy model, network trouble) and :class:`PermanentError` (something has to be
changed first: credentials, ids, roles, the remote job's data). Both derive from
``AirflowException`` so Airflow's normal retry handling applies; a retry policy can tell them
apart by class.
"""

from __future__ import annotations

from typing import Any

# The error hierarchy sits below ``_compat`` (which raises ConnectionConfigError), so it resolves its
# Airflow base classes itself instead of importing ``_compat``: the same classes ``_compat`` exports,
# from the Task SDK on Airflow 3 and from ``airflow.exceptions`` on 2.11.
try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 2.11
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[no-redef]


class SapplanError(AirflowException):
    """Base class for every error raised by this provider.

    :param message: what went wrong and what to check, in one or two sentences.
    :param platform: the platform that answered (``"Anaplan"``, ...), if any.
    :param status_code: the HTTP status the platform returned, if any.
    :param details: JSON-serializable context (ids, raw states) for logs and XCom.
    """

    def __init__(
        self,
        message: str,
        *,
        platform: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform
        self.status_code = status_code
        self.details = details or {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword-only attributes when the exception crosses a process boundary.
        return (_rebuild, (type(self), self.message, self.platform, self.status_code, self.details))


def _rebuild(
    cls: type[SapplanError], message: str, platform: str | None, status: int | None, details: dict
) -> SapplanError:
    return cls(message, platform=platform, status_code=status, details=details)


class TransientError(SapplanError):
    """The platform could not serve the request now; the same request may succeed later."""


class RateLimitedError(TransientError):
    """HTTP 429 (or a throttling answer) persisted through every retry."""


class ServiceUnavailableError(TransientError):
    """HTTP 5xx persisted through every retry."""


class NetworkError(TransientError):
    """The platform could not be reached, or the connection broke mid-request."""


class ResourceBusyError(TransientError):
    """The target is busy or locked (Anaplan 409/423) and stayed so through every retry."""


class PermanentError(SapplanError):
    """Retrying the same request will not help until something is changed."""


class ConnectionConfigError(PermanentError):
    """The Airflow connection is missing a field or holds a malformed value."""


class AuthenticationError(PermanentError, AirflowFailException):
    """Credentials were rejected, a token could not be obtained, or a login page came back.

    Also an ``AirflowFailException``: Airflow fails the task at once, without its retries, because the
    platforms lock an account after repeated failed logins. Fix the connection, then clear the task.
    """


class PermissionDeniedError(PermanentError):
    """HTTP 403: the user or client lacks a role or permission for the call."""


class NotFoundError(PermanentError):
    """HTTP 404: the id does not exist or is not visible to this user."""


class DumpUnavailableError(NotFoundError):
    """A failure dump was removed or replaced by a newer run (Anaplan answers 404)."""


class NameResolutionError(PermanentError):
    """A name matched no object, or more than one; the message lists the candidates."""


class InvalidRequestError(PermanentError):
    """HTTP 400/405/413/415/422/424/425 and similar: the request itself must change."""


class UploadError(PermanentError):
    """A file upload could not be completed; no partial file was reported as uploaded."""


class RemoteJobFailedError(PermanentError):
    """The remote work ran and ended unsuccessfully (failed, cancelled, rejected rows)."""


class RemoteJobTimeoutError(SapplanError):
    """The remote work did not finish before the wait's deadline."""
