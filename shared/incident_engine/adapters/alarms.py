"""CloudWatch alarm tags (the ``AlarmTags`` port) and the alarm ingest function's dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

MAX_PARKED_BYTES = 200 * 1024  # SQS takes 256 KB; the reason and envelope need the rest


class CloudWatchAlarmTags:
    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch

    def tags_for(self, alarm_arn: str) -> Mapping[str, str]:
        try:
            answer = self._cloudwatch.list_tags_for_resource(ResourceARN=alarm_arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return {}  # deleted since it fired: the name prefixes, then the catch-all, decide
            raise  # throttled or denied: retried, rather than routing the alarm to the wrong service
        return {t["Key"]: t["Value"] for t in answer.get("Tags", [])}


class SqsDeadLetter:
    """Where a payload that can never parse goes, with why, instead of into endless async retries."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def park(self, payload: Any, errors: list[dict[str, str]]) -> None:
        text = json.dumps(payload, default=str)
        kept = (
            text
            if len(text.encode()) <= MAX_PARKED_BYTES
            else text.encode()[:MAX_PARKED_BYTES].decode("utf-8", "ignore")
        )
        body = {"reason": "rejected", "errors": errors, "payload": kept, "truncated": kept != text}
        self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(body))
