"""SqsQueueDepths: the approximate counts SQS keeps for each queue (GetQueueAttributes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_COUNTS: dict[str, Any] = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


class SqsQueueDepths:
    def __init__(self, client: SQSClient, urls: dict[str, str]) -> None:
        self._client = client
        self._urls = {name: url for name, url in urls.items() if url}  # unset: not on this function

    def depths(self) -> dict[str, dict[str, int] | None]:
        found: dict[str, dict[str, int] | None] = {}
        for name, url in self._urls.items():
            try:
                attributes = self._client.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=list(_COUNTS.values()),
                )["Attributes"]
            except (ClientError, BotoCoreError):
                found[name] = None  # reported as a problem; never a 500 for a health check
                continue
            found[name] = {key: int(attributes.get(attr) or 0) for key, attr in _COUNTS.items()}
        return found
