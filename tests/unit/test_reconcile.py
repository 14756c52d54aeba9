"""core/reconcile.py: a start whose answer was lost is resent only after asking whether it started."""

from __future__ import annotations

import pytest

from airflow_provider_sapplan.core.reconcile import redo_disposable, send_or_reconcile
from airflow_provider_sapplan.exceptions import InvalidRequestError, NetworkError, ServiceUnavailableError


class Remote:
    def __init__(self, answers: list[object], started: list[bool]) -> None:
        self.answers = answers
        self.started_answers = started
        self.sends = 0
        self.asked = 0

    def send(self) -> object:
        self.sends += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def started(self) -> bool:
        self.asked += 1
        return self.started_answers.pop(0)


def test_answer_lost_after_the_platform_acted_is_not_sent_again() -> None:
    remote = Remote([ServiceUnavailableError("HTTP 502")], started=[True])
    assert send_or_reconcile(remote.send, remote.started, what="the run of job J") is None
    assert (remote.sends, remote.asked) == (1, 1)


def test_request_that_never_acted_is_sent_once_more() -> None:
    remote = Remote([NetworkError("connection dropped"), {"ok": True}], started=[False])
    assert send_or_reconcile(remote.send, remote.started, what="the run of job J") == {"ok": True}
    assert (remote.sends, remote.asked) == (2, 1)


def test_second_loss_is_raised_after_asking_again() -> None:
    remote = Remote([ServiceUnavailableError("500"), ServiceUnavailableError("500 again")], started=[False, False])
    with pytest.raises(ServiceUnavailableError, match="500 again"):
        send_or_reconcile(remote.send, remote.started, what="the run of job J")
    assert (remote.sends, remote.asked) == (2, 2)


def test_permanent_errors_are_not_reconciled() -> None:
    remote = Remote([InvalidRequestError("400")], started=[])
    with pytest.raises(InvalidRequestError):
        send_or_reconcile(remote.send, remote.started, what="the run of job J")
    assert remote.asked == 0


def test_failing_question_keeps_the_original_error() -> None:
    def started() -> bool:
        raise NetworkError("status unreachable too")

    with pytest.raises(ServiceUnavailableError, match="HTTP 502"):
        send_or_reconcile(Remote([ServiceUnavailableError("HTTP 502")], []).send, started, what="the run")


def test_disposable_work_is_redone_after_a_lost_answer_but_not_forever() -> None:
    remote = Remote([NetworkError("dropped"), ServiceUnavailableError("502"), "staged"], started=[])
    assert redo_disposable(remote.send, what="staging") == "staged"
    assert remote.sends == 3
    remote = Remote([NetworkError("a"), NetworkError("b"), NetworkError("c")], started=[])
    with pytest.raises(NetworkError, match="c"):
        redo_disposable(remote.send, what="staging")
    with pytest.raises(InvalidRequestError):  # a refusal is not a lost answer
        redo_disposable(Remote([InvalidRequestError("400")], []).send, what="staging")
