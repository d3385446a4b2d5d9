"""Enricher Lambda: SQS batches of AWS Batch events (or one bare event) → history + alerts."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

from batchlens import aws, telemetry
from batchlens.pipeline import Enricher, Message, Processed, RecordFailed
from batchlens.redact import guard_logger
from batchlens.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

Handler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]

logger = Logger(service="batchlens")
# Masks secrets in everything logged, from the first line of a cold start (a logged event too);
# the Enricher replaces it with one that honours REDACT_ALLOWLIST.
guard_logger(logging.getLogger(logger.service))
# Namespace from POWERTOOLS_METRICS_NAMESPACE; per-queue/status/category sets: see telemetry.
metrics = Metrics()
_enricher: Enricher | None = None


def traced(handler: Handler) -> Handler:
    """X-Ray subsegments for the handler and every boto3 call, when the stack asks for them.

    The X-Ray SDK is imported only then: it builds its own botocore client at import, about
    0.17 s of CPU that every cold start would pay (several times that at 256 MB). Lambda's own
    active tracing (the invocation and its init) needs no SDK and stays on.
    """
    disabled = resolve_truthy_env_var_choice(os.getenv("POWERTOOLS_TRACE_DISABLED", "false"))
    if disabled:
        return handler
    from aws_lambda_powertools import Tracer

    # Only boto3 is patched, to keep the cold start small. Calls made on the pipeline's worker
    # threads attach to the function's segment rather than the handler's subsegment.
    tracer = Tracer(patch_modules=["boto3"])
    # capture_response=False: responses carry job details.
    wrapped: Handler = tracer.capture_lambda_handler(capture_response=False)(handler)
    return wrapped


def enricher() -> Enricher:
    """Settings and clients, built once per execution environment (on first use)."""
    global _enricher  # noqa: PLW0603 - the per-cold-start singleton Lambda expects
    if _enricher is None:
        settings = Settings.from_env()
        # One session for every client: a session caches the endpoint and partition data it
        # loads, and a session per client would decode them four times at each cold start.
        session = aws.lambda_session()
        _enricher = Enricher(
            settings,
            batch=aws.client("batch", settings, session),
            dynamodb=aws.client("dynamodb", settings, session),
            sns=aws.client("sns", settings, session),
            logs=aws.client("logs", settings, session),
        )
    return _enricher


def _observe_stored(processed: list[Processed]) -> None:
    telemetry.observe_stored(processed, metrics)


@logger.inject_lambda_context
@traced
# Without a namespace Powertools' ColdStart document raises after the batch is processed (and
# the cold-start flag stays set, so every invocation fails): telemetry.observe only warns then.
@metrics.log_metrics(capture_cold_start_metric=bool(metrics.provider.namespace))
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Built first: on a cold start its clients take part of the invocation's time, and the
    # pipeline counts its deadline from when it starts (read before, the remaining time would
    # overstate it by the build, most on a cold start after a crash or on a busy host).
    pipeline = enricher()
    remaining_ms = context.get_remaining_time_in_millis()
    if "Records" not in event:
        # A bare EventBridge event: `sam local invoke -e events/…` or a direct rule target.
        message = Message(str(event.get("id", "event")), event)
        result = pipeline.process([message], remaining_ms, on_stored=_observe_stored)
        telemetry.observe(result, metrics, jobs=False)
        if result.failures:
            raise RecordFailed("; ".join(result.failures.values()))
        processed = result.processed[0]
        return {
            "record": processed.record.to_json_dict() if processed.record else None,
            "write": processed.write,
            "alerted": processed.alerted,
        }

    messages = [Message.from_sqs(record) for record in event["Records"]]
    result = pipeline.process(messages, remaining_ms, on_stored=_observe_stored)
    telemetry.observe(result, metrics, jobs=False)
    failures = result.failures

    if not failures:
        return {"batchItemFailures": []}
    # Powertools' batch utility imports every Parser model (~0.1 s), so only a batch with a
    # failed record loads it; it reports those records for SQS to redeliver (then the DLQ).
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    def check(record: SQSRecord) -> None:
        if record.message_id in failures:
            raise RecordFailed(failures[record.message_id])

    # A batch whose every record failed is reported like any other, not raised: SQS redelivers it
    # the same way, and on a quiet queue (batches of one) a raise would make each poison record an
    # invocation error, firing the errors alarm meant for crashes and timeouts.
    response = process_partial_response(
        event=event,
        record_handler=check,
        processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        context=context,
    )
    return dict(response)
