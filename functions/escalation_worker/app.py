"""Escalation worker: one SQS batch of timer messages (escalation levels, heartbeat deadlines,
maintenance windows' edges); failed records are reported, not the batch."""

import os
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from incident_engine.adapters.timers import decode_any_timer
from incident_engine.domain.heartbeats import HeartbeatTimer
from incident_engine.domain.maintenance import WindowTimer
from incident_engine.observability import logger, metrics
from incident_engine.wiring import services

processor = BatchProcessor(event_type=EventType.SQS)

if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") in ("snap-start", "provisioned-concurrency"):
    # An init no timer waits on (an environment kept warm, or the local stack's worker processes,
    # started before any timer is due): build the services and their AWS clients now rather than
    # in the first batch, which would otherwise hold its timers back while it does.
    services().open_clients()


def handle_record(record: SQSRecord) -> str:
    # A body that does not parse raises: the record is reported failed and, after the
    # queue's maxReceiveCount, lands in the DLQ for a human to read.
    timer = decode_any_timer(record.body)
    if isinstance(timer, HeartbeatTimer):
        return services().heartbeat_service().handle_timer(timer).value
    if isinstance(timer, WindowTimer):
        return services().maintenance_windows().handle_timer(timer).value
    return services().timer_service().handle_timer(timer).value


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=handle_record, processor=processor, context=context
    )
