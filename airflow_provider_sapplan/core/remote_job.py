"""What a platform tells the shared operator and sensor bases about one kind of remote job."""

from __future__ import annotations

import time
from typing import Any, ClassVar, NoReturn

from airflow_provider_sapplan.core.status import Outcome
from airflow_provider_sapplan.core.trigger import RemoteJobTrigger


class RemoteJobMixin:
    """The platform API shared by :class:`RemoteJobOperator` and :class:`RemoteJobSensor`.

    A platform sets :attr:`trigger_class` and :attr:`conn_id_field` and implements the status calls;
    the trigger is then built the same way for operators (which may cancel) and sensors (which never
    cancel work they did not start).
    """

    trigger_class: ClassVar[type[RemoteJobTrigger]]
    conn_id_field: ClassVar[str]

    def fetch(self, ref: dict[str, Any]) -> dict[str, Any]:
        """The job's current status document."""
        raise NotImplementedError

    def outcome(self, status: dict[str, Any]) -> Outcome:
        raise NotImplementedError

    def raw_state(self, status: dict[str, Any]) -> str:
        raise NotImplementedError

    def succeeded(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> Any:
        """The task's return value (XCom) for a job that succeeded."""
        raise NotImplementedError

    def failed(self, ref: dict[str, Any], status: dict[str, Any], context: Any) -> NoReturn:
        """Raise the error for a job that ended unsuccessfully."""
        raise NotImplementedError

    def trigger_class_for(self, ref: dict[str, Any]) -> type[RemoteJobTrigger]:
        """The trigger that waits on ``ref`` (a multi-phase wait picks one per phase)."""
        return self.trigger_class

    def build_trigger(
        self,
        ref: dict[str, Any],
        deadline: float | None,
        *,
        poll_interval: float,
        max_poll_interval: float = 60.0,
        cancel_on_kill: bool,
        outage_window: float | None = None,
    ) -> RemoteJobTrigger:
        """The trigger for ``ref``; called right after a status check, so its first poll waits an interval."""
        return self.trigger_class_for(ref)(
            conn_id=getattr(self, self.conn_id_field),
            ref=ref,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            deadline=deadline,
            cancel_on_kill=cancel_on_kill,
            checked_at=time.time(),
            **({} if outage_window is None else {"outage_window": outage_window}),
        )
