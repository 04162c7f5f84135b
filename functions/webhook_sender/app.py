"""Webhook sender: SQS (subscribed to the notifications topic, channel=webhook) -> signed POSTs.

Thin: each record is one notification for one webhook. A failed attempt comes back after a
growing visibility delay; after the last, the queue's redrive moves it to the DLQ.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from incident_engine.observability import logger, metrics
from incident_engine.wiring import services

# A receiver that is down fails every record of a batch: that is the customer's endpoint, not this
# function, so it is reported per record (retried, then the DLQ and its alarm) and not raised as an
# invocation error, which would put WebhookSenderErrorsAlarm in ALARM for someone else's outage.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class NotDelivered(Exception):
    """Reported as a batch-item failure, so SQS delivers the record again (or to the DLQ)."""


def record_handler(record: SQSRecord) -> None:
    outcome = (
        services()
        .webhook_sender()
        .handle_message(
            body=record.body,
            attempt=int(record.attributes.approximate_receive_count or "1"),
            receipt_handle=record.receipt_handle,
        )
    )
    if not outcome:
        raise NotDelivered(record.message_id)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
