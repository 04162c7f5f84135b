"""boto3 clients, created on first use (cold starts stay cheap) and shared by the adapters."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


@lru_cache(maxsize=8)
def _client(service: str, region: str, endpoint_url: str | None) -> Any:
    import boto3  # deferred: the api function may answer a request without touching SQS/SNS

    session: Any = boto3.session.Session()  # one session per client: sessions are not thread-safe
    return session.client(service, region_name=region, endpoint_url=endpoint_url)


def sqs_client(region: str, endpoint_url: str | None) -> SQSClient:
    client: SQSClient = _client("sqs", region, endpoint_url)
    return client


def sns_client(region: str, endpoint_url: str | None) -> SNSClient:
    client: SNSClient = _client("sns", region, endpoint_url)
    return client


def cloudwatch_client(region: str, endpoint_url: str | None) -> Any:
    return _client("cloudwatch", region, endpoint_url)


def forget_clients() -> None:
    _client.cache_clear()
