"""EscalationTimerQueue: the SQS timer queue, one delayed message per armed timer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from incident_engine.domain.heartbeats import HeartbeatTimer
from incident_engine.domain.maintenance import END, START, WindowTimer
from incident_engine.domain.model import TimerMessage
from incident_engine.domain.timefmt import parse_iso, to_key

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_DELAY_SECONDS = 900  # SQS's ceiling; longer waits hop


HEARTBEAT_KIND = "heartbeat"  # an incident's escalation timer carries no "kind" (the first one)
MAINTENANCE_KIND = "maintenance"  # a maintenance window's start or end, noted on timelines
AnyTimer = TimerMessage | HeartbeatTimer | WindowTimer


def encode_timer(message: AnyTimer) -> str:
    body: dict[str, str]
    if isinstance(message, WindowTimer):
        body = {
            "kind": MAINTENANCE_KIND,
            "window_id": message.window_id,
            "edge": message.edge,
            "due_at": to_key(message.due_at),
        }
    elif isinstance(message, HeartbeatTimer):
        body = {
            "kind": HEARTBEAT_KIND,
            "heartbeat_id": message.heartbeat_id,
            "token": message.token,
            "due_at": to_key(message.due_at),
        }
    else:
        body = {"incident_id": message.incident_id, "token": message.token, "due_at": to_key(message.due_at)}
        if message.page is not None:
            body["page"] = message.page  # a delayed contact's page: its outbox row's dedup id
    return json.dumps(body, separators=(",", ":"))


def decode_timer(body: str) -> TimerMessage:
    data = json.loads(body)
    page = data.get("page")
    return TimerMessage(
        str(data["incident_id"]),
        str(data["token"]),
        parse_iso(str(data["due_at"])),
        page=None if page is None else str(page),
    )


def decode_any_timer(body: str) -> AnyTimer:
    """Either kind of timer; anything else raises (the record fails and ends in the DLQ)."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a timer message is a JSON object")
    kind = data.get("kind")
    if kind is None:
        return decode_timer(body)
    if kind == HEARTBEAT_KIND:
        return HeartbeatTimer(str(data["heartbeat_id"]), str(data["token"]), parse_iso(str(data["due_at"])))
    if kind == MAINTENANCE_KIND:
        edge = str(data["edge"])
        if edge not in (START, END):
            raise ValueError("a maintenance timer's edge is start or end")
        return WindowTimer(str(data["window_id"]), edge, parse_iso(str(data["due_at"])))
    raise ValueError(f"unknown timer kind {str(kind)[:40]!r}")


class EscalationTimerQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, message: AnyTimer, delay_seconds: int) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=encode_timer(message),
            DelaySeconds=max(0, min(MAX_DELAY_SECONDS, delay_seconds)),
        )


class SqsVisibility:
    """Delays an SQS message's next delivery: the webhook sender's growing retry waits."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def delay(self, receipt_handle: str, seconds: int) -> None:
        self._client.change_message_visibility(
            QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
