"""The escalation worker's own partial-batch loop: the contract Lambda's ReportBatchItemFailures reads."""

from __future__ import annotations

from typing import Any

import pytest

from functions.escalation_worker import app


def record(message_id: str, body: Any) -> dict[str, Any]:
    return {"messageId": message_id, "body": body, "eventSource": "aws:sqs"}


def test_failed_records_are_named_and_the_others_handled(monkeypatch: pytest.MonkeyPatch) -> None:
    handled: list[str] = []

    def handle(body: str) -> str:
        if body == "bad":
            raise ValueError("not a timer")
        handled.append(body)
        return "fired"

    monkeypatch.setattr(app, "handle_record", handle)
    # Given a batch of a good record, one that fails, one with no string body, and another good one
    event = {"Records": [record("1", "a"), record("2", "bad"), record("3", {"x": 1}), record("4", "b")]}
    # When the worker handles it
    answer = app.handle_batch(event)
    # Then the failures are reported by message id, and every other record was handled once
    assert answer == {"batchItemFailures": [{"itemIdentifier": "2"}, {"itemIdentifier": "3"}]}
    assert handled == ["a", "b"]


def test_a_batch_whose_every_record_fails_fails_the_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    def handle(body: str) -> str:
        raise RuntimeError("store down")

    monkeypatch.setattr(app, "handle_record", handle)
    # When no record of the batch goes through, Then the invocation itself fails (Lambda's Errors)
    with pytest.raises(app.EveryRecordFailed):
        app.handle_batch({"Records": [record("1", "a"), record("2", "b")]})
    # and an event that is no SQS batch at all fails too; an empty one has nothing to report
    with pytest.raises(TypeError):
        app.handle_batch({"Records": "not a list"})
    assert app.handle_batch({"Records": []}) == {"batchItemFailures": []}
