"""SnsNotificationPublisher: one SNS message per outbox row, the dedup id as an attribute."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from incident_engine.domain.model import Notification

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

BATCH = 10  # SNS PublishBatch takes at most 10 entries


def _attributes(notification: Notification) -> dict[str, Any]:
    return {
        name: {"DataType": "String", "StringValue": value}
        for name, value in notification.attributes.items()
        if value
    }


class SnsNotificationPublisher:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish_all(self, notifications: list[Notification]) -> list[Notification]:
        """One Publish for a single message; PublishBatch (billed per 64 KB) for several."""
        if len(notifications) == 1:
            n = notifications[0]
            self._client.publish(
                TopicArn=self._topic_arn,
                Subject=n.subject,
                Message=n.message,
                MessageAttributes=_attributes(n),
            )
            return list(notifications)
        accepted: list[Notification] = []
        for start in range(0, len(notifications), BATCH):
            chunk = notifications[start : start + BATCH]
            response = self._client.publish_batch(
                TopicArn=self._topic_arn,
                PublishBatchRequestEntries=[
                    {
                        "Id": str(i),
                        "Subject": n.subject,
                        "Message": n.message,
                        "MessageAttributes": _attributes(n),
                    }
                    for i, n in enumerate(chunk)
                ],
            )
            accepted += [chunk[int(ok["Id"])] for ok in response.get("Successful", [])]
        return accepted
