"""SnsContactSubscriptions: a user's e-mail or SMS contact method as a subscription to the
notifications topic, filtered on its recipient, so SNS itself delivers that person's pages.

Every outbox row is published with the message attributes ``channel`` and ``recipient`` (the
address itself, never the hashed form a long address takes inside DynamoDB keys), and the filter
policy names exactly those: an e-mail subscription receives the pages, resolution and
cancellation notices addressed to its address on the e-mail channel, and nothing else.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from incident_engine.usecases.ports import SubscriptionRefused, SubscriptionUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

PROTOCOLS = {"email": "email", "sms": "sms"}
# SNS blames the request for these: the address itself will not do.
REFUSALS = frozenset({"InvalidParameter", "InvalidParameterValue", "ValidationError"})


def filter_policy(channel: str, address: str) -> dict[str, Any]:
    """What this contact method's subscription accepts. E-mail addresses compare without case
    (a policy may name one with capitals); a phone number is exact (E.164 has no case)."""
    recipient: Any = {"equals-ignore-case": address} if channel == "email" else address
    return {"channel": [channel], "recipient": [recipient]}


class SnsContactSubscriptions:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def subscribe(self, channel: str, address: str) -> str:
        """The subscription's ARN. SNS keeps one subscription per endpoint and protocol: saving the
        same address again returns the same one (and, while unconfirmed, sends the e-mail again)."""
        try:
            answer = self._client.subscribe(
                TopicArn=self._topic_arn,
                Protocol=PROTOCOLS[channel],
                Endpoint=address,
                Attributes={
                    "FilterPolicy": json.dumps(filter_policy(channel, address)),
                    "FilterPolicyScope": "MessageAttributes",
                },
                # Without it an e-mail subscription answers "pending confirmation", not its ARN.
                ReturnSubscriptionArn=True,
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            message = str(exc.response.get("Error", {}).get("Message", code))
            if code in REFUSALS and "already exists" in message:
                # Subscribed before with other attributes (by hand, as this README once advised):
                # that subscription is the address's, and it is kept as it is.
                existing = self._find(channel, address)
                if existing is not None:
                    return existing
            if code in REFUSALS:
                raise SubscriptionRefused(message) from exc
            raise SubscriptionUnavailable(code) from exc
        except (BotoCoreError, OSError) as exc:
            raise SubscriptionUnavailable(type(exc).__name__) from exc
        return str(answer["SubscriptionArn"])

    def _find(self, channel: str, address: str) -> str | None:
        try:
            pages = self._client.get_paginator("list_subscriptions_by_topic").paginate(
                TopicArn=self._topic_arn
            )
            for page in pages:
                for sub in page.get("Subscriptions", []):
                    if sub.get("Protocol") == PROTOCOLS[channel] and sub.get("Endpoint") == address:
                        return str(sub["SubscriptionArn"])
        except (ClientError, BotoCoreError, OSError) as exc:
            raise SubscriptionUnavailable(type(exc).__name__) from exc
        return None

    def status(self, arn: str) -> str:
        """pending_confirmation | confirmed | unsubscribed (gone: unsubscribed by us or by the
        recipient, or never confirmed in time) | unknown (SNS did not answer)."""
        try:
            attributes = self._client.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            return "unsubscribed" if code in ("NotFound", "NotFoundException") else "unknown"
        except (BotoCoreError, OSError):
            return "unknown"
        pending = str(attributes.get("PendingConfirmation", "false")).lower() == "true"
        return "pending_confirmation" if pending else "confirmed"

    def unsubscribe(self, arn: str) -> bool:
        try:
            self._client.unsubscribe(SubscriptionArn=arn)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            return code in ("NotFound", "NotFoundException")  # already gone: done
        except (BotoCoreError, OSError):
            return False
        return True
