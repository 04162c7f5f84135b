"""Escalation worker: one SQS batch of timer messages (escalation levels, heartbeat deadlines,
maintenance windows' edges); failed records are reported, not the batch."""

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from incident_engine.adapters.timers import decode_any_timer
from incident_engine.domain.heartbeats import HeartbeatTimer
from incident_engine.domain.maintenance import WindowTimer
from incident_engine.observability import logger, metrics
from incident_engine.wiring import services

if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") in ("snap-start", "provisioned-concurrency"):
    # An init no timer waits on (an environment kept warm, or the local stack's worker processes,
    # started before any timer is due): build the services and their AWS clients now rather than
    # in the first batch, which would otherwise hold its timers back while it does.
    services().open_clients()


class EveryRecordFailed(RuntimeError):
    """No record of the batch went through: the invocation fails (Lambda's Errors metric, the
    worker's alarm) and SQS delivers them all again."""


def handle_record(body: str) -> str:
    # A body that does not parse raises: the record is reported failed and, after the
    # queue's maxReceiveCount, lands in the DLQ for a human to read.
    timer = decode_any_timer(body)
    if isinstance(timer, HeartbeatTimer):
        return services().heartbeat_service().handle_timer(timer).value
    if isinstance(timer, WindowTimer):
        return services().maintenance_windows().handle_timer(timer).value
    return services().timer_service().handle_timer(timer).value


def handle_batch(event: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """ReportBatchItemFailures: each record handled on its own, the failed ones named by message id.

    Our own loop rather than Powertools' batch utility, whose import (asyncio and every event data
    class) was about a third of this function's cold start; the contract is the same."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise TypeError("an SQS event carries a list of Records")
    failed: list[dict[str, str]] = []
    for record in records:
        message_id = str(record.get("messageId", "")) if isinstance(record, dict) else ""
        try:
            if not isinstance(record, dict) or not isinstance(record.get("body"), str):
                raise TypeError("an SQS record carries a string body")
            handle_record(record["body"])
        except Exception:
            logger.exception("timer record failed; SQS delivers it again", extra={"message_id": message_id})
            failed.append({"itemIdentifier": message_id})
    if records and len(failed) == len(records):
        raise EveryRecordFailed(f"all {len(records)} records of the batch failed")
    return {"batchItemFailures": failed}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    return handle_batch(event)
