"""Enricher Lambda: SQS batches of AWS Batch events (or one bare event) → history + alerts."""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchlens import aws, telemetry
from batchlens.pipeline import Enricher, Message, RecordFailed
from batchlens.redact import guard_logger
from batchlens.settings import Settings

logger = Logger(service="batchlens")
# Masks secrets in everything logged, from the first line of a cold start (a logged event too);
# the Enricher replaces it with one that honours REDACT_ALLOWLIST.
guard_logger(logging.getLogger(logger.service))
# Namespace from POWERTOOLS_METRICS_NAMESPACE; per-queue/status/category sets: see telemetry.
metrics = Metrics()
# X-Ray for the handler and every boto3 call (Batch, DynamoDB, SNS, Logs); only boto3 is
# patched, to keep the cold start small. Calls made on the pipeline's worker threads attach to
# the function's segment rather than the handler's subsegment.
tracer = Tracer(patch_modules=["boto3"])
processor = BatchProcessor(event_type=EventType.SQS)
_enricher: Enricher | None = None


def enricher() -> Enricher:
    """Settings and clients, built once per execution environment (on first use)."""
    global _enricher  # noqa: PLW0603 - the per-cold-start singleton Lambda expects
    if _enricher is None:
        settings = Settings.from_env()
        _enricher = Enricher(
            settings,
            batch=aws.client("batch", settings),
            dynamodb=aws.client("dynamodb", settings),
            sns=aws.client("sns", settings),
            logs=aws.client("logs", settings),
        )
    return _enricher


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # responses carry job details
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    remaining_ms = context.get_remaining_time_in_millis()
    if "Records" not in event:
        # A bare EventBridge event: `sam local invoke -e events/…` or a direct rule target.
        result = enricher().process([Message(str(event.get("id", "event")), event)], remaining_ms)
        telemetry.observe(result, metrics)
        if result.failures:
            raise RecordFailed("; ".join(result.failures.values()))
        processed = result.processed[0]
        return {
            "record": processed.record.to_json_dict() if processed.record else None,
            "write": processed.write,
            "alerted": processed.alerted,
        }

    messages = [Message(record["messageId"], record["body"]) for record in event["Records"]]
    result = enricher().process(messages, remaining_ms)
    telemetry.observe(result, metrics)
    failures = result.failures

    def check(record: SQSRecord) -> None:
        if record.message_id in failures:
            raise RecordFailed(failures[record.message_id])

    response = process_partial_response(
        event=event, record_handler=check, processor=processor, context=context
    )
    return dict(response)
