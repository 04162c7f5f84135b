"""SnsNotificationPublisher: one SNS message per outbox row, the dedup id as an attribute."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from incident_engine.domain.model import Notification
from incident_engine.usecases.ports import PublishFailure, PublishResult

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

BATCH_ENTRIES = 10  # SNS PublishBatch takes at most 10 entries
# SNS caps one message, and a whole PublishBatch request, at 256 KiB (body, subject and
# attributes). Keep a margin for the request's own framing.
BATCH_BYTES = 256 * 1024 - 4 * 1024
# Errors where SNS blames the request: the same request will fail the same way again.
PERMANENT_ERRORS = frozenset(
    {"InvalidParameter", "InvalidParameterValue", "ValidationError", "BatchRequestTooLong", "NotFound"}
)


def _attributes(notification: Notification) -> dict[str, Any]:
    return {
        name: {"DataType": "String", "StringValue": value}
        for name, value in notification.attributes.items()
        if value
    }


def entry_size(n: Notification) -> int:
    attrs = sum(len(k.encode()) + len("String") + len(v.encode()) for k, v in n.attributes.items() if v)
    return len(n.message.encode()) + len(n.subject.encode()) + attrs


def size_batches(notifications: list[Notification]) -> list[list[Notification]]:
    """Consecutive chunks of at most 10 entries and 256 KiB in all (an oversized row goes alone)."""
    batches: list[list[Notification]] = []
    current: list[Notification] = []
    size = 0
    for n in notifications:
        grows = entry_size(n)
        if current and (len(current) == BATCH_ENTRIES or size + grows > BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(n)
        size += grows
    if current:
        batches.append(current)
    return batches


def _failure_of(exc: Exception) -> tuple[str, bool]:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
        return code, code in PERMANENT_ERRORS
    return type(exc).__name__, False


class SnsNotificationPublisher:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish_all(self, notifications: list[Notification]) -> PublishResult:
        """Publish for one message, PublishBatch (billed per 64 KB) for several.

        Each batch stands on its own: one that fails leaves the others' results intact, so a row
        SNS accepted is reported accepted (and marked sent) whatever happens to the next batch.
        """
        accepted: list[Notification] = []
        failed: list[PublishFailure] = []
        for batch in size_batches(notifications):
            try:
                ok, bad = self._publish(batch)
            except (ClientError, BotoCoreError, OSError) as exc:
                error, permanent = _failure_of(exc)
                failed += [PublishFailure(n, error, permanent) for n in batch]
                continue
            accepted += ok
            failed += bad
        return PublishResult(accepted, failed)

    def _publish(self, batch: list[Notification]) -> tuple[list[Notification], list[PublishFailure]]:
        if len(batch) == 1:
            n = batch[0]
            self._client.publish(
                TopicArn=self._topic_arn,
                Subject=n.subject,
                Message=n.message,
                MessageAttributes=_attributes(n),
            )
            return [n], []
        response = self._client.publish_batch(
            TopicArn=self._topic_arn,
            PublishBatchRequestEntries=[
                {
                    "Id": str(i),
                    "Subject": n.subject,
                    "Message": n.message,
                    "MessageAttributes": _attributes(n),
                }
                for i, n in enumerate(batch)
            ],
        )
        ok = [batch[int(entry["Id"])] for entry in response.get("Successful", [])]
        bad = [
            PublishFailure(
                batch[int(entry["Id"])],
                str(entry.get("Code", "Failed")),
                bool(entry.get("SenderFault", False)),
            )
            for entry in response.get("Failed", [])
        ]
        return ok, bad
