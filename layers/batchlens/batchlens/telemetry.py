"""What one processed batch tells operators: CloudWatch metrics (EMF) and one log line per event.

Metrics go out in the embedded metric format through Powertools, in the namespace the function's
`POWERTOOLS_METRICS_NAMESPACE` names (`batchlens`), with Powertools' `service` dimension and at
most the low-cardinality dimensions `queue`, `status` and `category` (never a job id: that is in
the logs). EMF applies one dimension set to every metric of a document, so:

* dimensionless counters go to the handler's `Metrics`, flushed by `@metrics.log_metrics`;
* each distinct dimension set (e.g. `queue=etl`) is flushed here as its own EMF document.

Jobs are counted where they run: array children and multi-node nodes one by one, their parents
(which only summarise them) not again. Job metrics count each transition once, when it is first
stored (`WriteOutcome.FRESH`), so redeliveries never inflate them.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from batchlens import alerts
from batchlens.history import WriteOutcome
from batchlens.records import Enrichment, JobKind, JobRecord

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import Metrics

    from batchlens.pipeline import BatchResult, Processed

logger = logging.getLogger("batchlens")

#: Parents summarise their children/nodes, which are counted themselves.
PARENT_KINDS = frozenset({JobKind.ARRAY_PARENT, JobKind.MULTINODE_PARENT})


class Unit(StrEnum):
    """CloudWatch units used here (the values Powertools' `MetricUnit` accepts)."""

    COUNT = "Count"
    SECONDS = "Seconds"
    MILLISECONDS = "Milliseconds"


class Metric(StrEnum):
    """Every metric batchlens emits (the dashboard and alarms name only these)."""

    EVENTS_RECEIVED = "EventsReceived"
    JOBS_COMPLETED = "JobsCompleted"
    JOB_FAILURES = "JobFailures"
    QUEUE_BLOCKED = "QueueBlockedEvents"
    QUEUE_WAIT = "QueueWaitSeconds"
    RUN_TIME = "RunSeconds"
    STALE_SKIPPED = "StaleEventsSkipped"
    DUPLICATE_SKIPPED = "DuplicateEventsSkipped"
    JOBS_NOT_FOUND = "JobsNotFound"
    ALERTS_SENT = "AlertsSent"
    ENRICHMENT_LATENCY = "EnrichmentLatency"
    POISON_RECORDS = "PoisonRecords"
    RECORDS_RETRIED = "RecordsRetried"


#: name -> (unit, the dimension sets it is emitted with besides `service`; () is none).
CATALOGUE: Mapping[Metric, tuple[Unit, tuple[tuple[str, ...], ...]]] = {
    Metric.EVENTS_RECEIVED: (Unit.COUNT, ((),)),
    Metric.JOBS_COMPLETED: (Unit.COUNT, (("queue", "status"),)),
    Metric.JOB_FAILURES: (Unit.COUNT, (("category",), ("queue",))),
    Metric.QUEUE_BLOCKED: (Unit.COUNT, (("queue",),)),
    Metric.QUEUE_WAIT: (Unit.SECONDS, (("queue",),)),
    Metric.RUN_TIME: (Unit.SECONDS, (("queue",),)),
    Metric.STALE_SKIPPED: (Unit.COUNT, ((),)),
    Metric.DUPLICATE_SKIPPED: (Unit.COUNT, ((),)),
    Metric.JOBS_NOT_FOUND: (Unit.COUNT, ((),)),
    Metric.ALERTS_SENT: (Unit.COUNT, ((),)),
    Metric.ENRICHMENT_LATENCY: (Unit.MILLISECONDS, ((),)),
    Metric.POISON_RECORDS: (Unit.COUNT, ((),)),
    Metric.RECORDS_RETRIED: (Unit.COUNT, ((),)),
}

#: Emitted for every batch, zero included, so graphs and alarms see a value, not a gap.
ALWAYS = (
    Metric.EVENTS_RECEIVED,
    Metric.STALE_SKIPPED,
    Metric.DUPLICATE_SKIPPED,
    Metric.JOBS_NOT_FOUND,
    Metric.ALERTS_SENT,
    Metric.POISON_RECORDS,
    Metric.RECORDS_RETRIED,
)

Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Measurement:
    metric: Metric
    value: float
    dimensions: Dimensions = ()

    @property
    def unit(self) -> Unit:
        return CATALOGUE[self.metric][0]


def _counts(counts: Mapping[Metric, int]) -> list[Measurement]:
    return [Measurement(metric, float(counts.get(metric, 0))) for metric in ALWAYS]


def _job_measurements(record: JobRecord) -> Iterable[Measurement]:
    """The per-job metrics of one newly stored transition of a job that runs itself."""
    queue = record.job_queue.name
    if record.event_type.is_queue_blocked:
        yield Measurement(Metric.QUEUE_BLOCKED, 1, (("queue", queue),))
        return
    if not record.is_terminal:
        return
    yield Measurement(Metric.JOBS_COMPLETED, 1, (("queue", queue), ("status", record.status)))
    if record.queued_seconds is not None:
        yield Measurement(Metric.QUEUE_WAIT, record.queued_seconds, (("queue", queue),))
    if record.run_seconds is not None:
        yield Measurement(Metric.RUN_TIME, record.run_seconds, (("queue", queue),))
    if record.status == "FAILED":
        category = record.failure.category.value if record.failure else "UNKNOWN"
        yield Measurement(Metric.JOB_FAILURES, 1, (("category", category),))
        yield Measurement(Metric.JOB_FAILURES, 1, (("queue", queue),))


def measure_stored(processed: Iterable[Processed]) -> list[Measurement]:
    """The job metrics and latencies of the transitions first stored (`FRESH`) among `processed`."""
    measurements: list[Measurement] = []
    for outcome in processed:
        record = outcome.record
        # Counted once, when first stored; a failure after the store (timeline, alert, a
        # timeout) is redelivered and then finds the transition already stored (DUPLICATE).
        if record is None or outcome.write is not WriteOutcome.FRESH:
            continue
        if outcome.stored_at is not None:
            latency = (outcome.stored_at - record.event_time).total_seconds() * 1000
            measurements.append(Measurement(Metric.ENRICHMENT_LATENCY, max(latency, 0.0)))
        if record.job_kind not in PARENT_KINDS:
            measurements.extend(_job_measurements(record))
    return measurements


def measure(result: BatchResult, *, jobs: bool = True) -> list[Measurement]:
    """Every measurement of one batch (pure: the same result always gives the same list);
    without `jobs`, only the batch's counters (the rest went out through `observe_stored`)."""
    counts: dict[Metric, int] = defaultdict(int)
    not_found: set[str] = set()
    alerted: set[str] = set()
    counts[Metric.EVENTS_RECEIVED] = len(result.processed)
    for processed in result.processed:
        if processed.poison:
            counts[Metric.POISON_RECORDS] += 1
        elif processed.error is not None:
            counts[Metric.RECORDS_RETRIED] += 1
        if processed.write is WriteOutcome.STALE:
            counts[Metric.STALE_SKIPPED] += 1
        elif processed.write is WriteOutcome.DUPLICATE:
            counts[Metric.DUPLICATE_SKIPPED] += 1
        record = processed.record
        if record is None:
            continue
        if record.enrichment is Enrichment.NOT_FOUND:
            not_found.add(record.job_id)
        if processed.alerted:
            alerted.add(json.dumps(alerts.alert_key(record), sort_keys=True))
    counts[Metric.JOBS_NOT_FOUND] = len(not_found)
    counts[Metric.ALERTS_SENT] = len(alerted)
    return _counts(counts) + (measure_stored(result.processed) if jobs else [])


def publish(measurements: Iterable[Measurement], metrics: Metrics, *, now: bool = False) -> None:
    """Dimensionless measurements into `metrics`; one EMF document per other dimension set.

    `now`: the dimensionless ones too go out at once, in a document of their own.
    """
    from aws_lambda_powertools.metrics import EphemeralMetrics

    by_dimensions: dict[Dimensions, list[Measurement]] = defaultdict(list)
    for measurement in measurements:
        if measurement.dimensions or now:
            by_dimensions[measurement.dimensions].append(measurement)
        else:
            metrics.add_metric(measurement.metric.value, measurement.unit.value, measurement.value)
    for dimensions, group in by_dimensions.items():
        document = EphemeralMetrics(
            namespace=metrics.provider.namespace, service=metrics.provider.service
        )
        for name, value in dimensions:
            document.add_dimension(name=name, value=value)
        for measurement in group:
            document.add_metric(measurement.metric.value, measurement.unit.value, measurement.value)
        document.flush_metrics()


def log_outcomes(result: BatchResult) -> None:
    """One structured line per event, with its job id as the correlation id."""
    for processed in result.processed:
        record = processed.record
        if record is None:
            continue  # poison: the pipeline logged it with its message id
        fields = _log_fields(processed, record)
        if processed.error is not None:
            logger.warning("Job event will be retried", extra=fields)
        else:
            logger.info("Job event processed", extra=fields)


def _log_fields(processed: Processed, record: JobRecord) -> dict[str, object]:
    return {
        "correlation_id": record.job_id,
        "message_id": processed.message_id,
        "event_id": record.event_id,
        "job_name": record.job_name,
        "job_queue": record.job_queue.name,
        "job_kind": record.job_kind.value,
        "status": record.status,
        "category": record.failure.category.value if record.failure else None,
        "enrichment": record.enrichment.value,
        "write": processed.write.value if processed.write else None,
        "alerted": processed.alerted,
        "error": processed.error,
    }


def observe_stored(processed: list[Processed], metrics: Metrics) -> None:
    """The job metrics of newly stored transitions, printed at once (`Enricher.process`'s
    `on_stored`): left to the end of the invocation, a timeout in between would lose them for
    good, since the redelivery finds the transitions stored already (DUPLICATE)."""
    if not metrics.provider.namespace:
        return
    try:
        publish(measure_stored(processed), metrics, now=True)
    except Exception:
        logger.exception("Could not emit metrics")


def observe(result: BatchResult, metrics: Metrics, *, jobs: bool = True) -> None:
    """Metrics and per-event logs of one processed batch (the handler's last telemetry call;
    `jobs=False` when `observe_stored` emitted the job metrics already).

    Best effort: the batch is already stored and alerted, and failing it over a metric would
    only redeliver it.
    """
    log_outcomes(result)
    if not metrics.provider.namespace:
        logger.warning("No metrics: POWERTOOLS_METRICS_NAMESPACE is not set")
        return
    try:
        publish(measure(result, jobs=jobs), metrics)
    except Exception:
        logger.exception("Could not emit metrics")
