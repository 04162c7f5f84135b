"""SnsNotificationPublisher: one SNS publish per outbox row, the dedup id as an attribute."""

from __future__ import annotations

from typing import TYPE_CHECKING

from incident_engine.domain.model import Notification

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class SnsNotificationPublisher:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, notification: Notification) -> None:
        self._client.publish(
            TopicArn=self._topic_arn,
            Subject=notification.subject,
            Message=notification.message,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in notification.attributes.items()
                if value
            },
        )
