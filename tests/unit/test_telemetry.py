"""Metrics (EMF) and per-event logs of a processed batch: what operators see, metric by metric.

Powertools prints each EMF document as one JSON line on stdout (Lambda turns it into metrics), so
the tests read stdout and check every metric's name, dimensions, unit and values.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools.metrics import Metrics

from batchlens import telemetry
from batchlens.events import parse_event
from batchlens.history import WriteOutcome
from batchlens.pipeline import BatchResult, Processed
from batchlens.records import Enrichment, JobRecord, normalise
from batchlens.telemetry import CATALOGUE, Metric
from tests.conftest import read_event, variant

NAMESPACE = "batchlens"
SERVICE = "batchlens"
ALLOWED_DIMENSIONS = {"service", "queue", "status", "category"}


@dataclass(frozen=True)
class Emitted:
    """One metric as CloudWatch would ingest it from one EMF document."""

    name: str
    unit: str
    dimensions: dict[str, str]
    values: list[float]


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    documents = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" in document:
            documents.append(document)
    return documents


def emitted(stdout: str) -> list[Emitted]:
    found = []
    for document in emf_documents(stdout):
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == NAMESPACE
            (dimension_names,) = directive["Dimensions"]  # one dimension set per document
            dimensions = {name: document[name] for name in dimension_names}
            for definition in directive["Metrics"]:
                value = document[definition["Name"]]
                found.append(
                    Emitted(
                        name=definition["Name"],
                        unit=definition["Unit"],
                        dimensions=dimensions,
                        values=value if isinstance(value, list) else [value],
                    )
                )
    return found


def find(metrics: list[Emitted], name: str, **dimensions: str) -> Emitted:
    wanted = {"service": SERVICE, **dimensions}
    matches = [m for m in metrics if m.name == name and m.dimensions == wanted]
    assert len(matches) == 1, f"{name} {wanted}: {matches} in {metrics}"
    return matches[0]


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[Metrics]:
    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"):
        monkeypatch.delenv(name, raising=False)
    shared = Metrics(namespace=NAMESPACE, service=SERVICE)
    yield shared
    shared.clear_metrics()  # Metrics instances share one store


def record(name: str, **detail: Any) -> JobRecord:
    event = variant(read_event(name), **detail) if detail else read_event(name)
    return normalise(parse_event(event))


def stored(job: JobRecord, write: WriteOutcome, *, after_ms: int = 1500, **kw: Any) -> Processed:
    return Processed(
        message_id=f"m-{job.event_id}",
        record=job,
        write=write,
        stored_at=job.event_time + timedelta(milliseconds=after_ms),
        **kw,
    )


def a_processed_batch() -> BatchResult:
    """Every outcome the pipeline can report, once or twice."""
    oom = record("job-failed-oom")  # genomics-queue, OUT_OF_MEMORY, queued 151.288 s, ran 988.361 s
    succeeded = record("job-succeeded")  # etl-queue, queued 217.696 s, ran 926.725 s
    running = record("job-running")  # etl-queue, the same job as `succeeded`, older
    child = record("array-child-failed")  # media-queue, APPLICATION_ERROR
    parent = record("array-parent-failed")  # media-queue: summarises its children
    blocked = record("job-queue-blocked-capacity")  # gpu-training-queue
    gone = record("job-failed-spot").model_copy(update={"enrichment": Enrichment.NOT_FOUND})
    return BatchResult(
        processed=[
            stored(oom, WriteOutcome.FRESH, after_ms=2000, alerted=True),
            stored(succeeded, WriteOutcome.FRESH, after_ms=4000),
            stored(succeeded, WriteOutcome.DUPLICATE),  # the same event twice
            stored(running, WriteOutcome.STALE),
            stored(child, WriteOutcome.FRESH, after_ms=1000),
            stored(parent, WriteOutcome.FRESH, after_ms=3000, alerted=True),
            stored(blocked, WriteOutcome.FRESH, after_ms=5000, alerted=True),
            stored(gone, WriteOutcome.DUPLICATE, alerted=False),
            Processed(message_id="poison", error="invalid event: not JSON", poison=True),
            Processed(message_id="unstored", record=oom, error="store failed: throttled"),
        ]
    )


def test_a_processed_batch_emits_every_metric_with_its_dimensions_and_unit(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch with fresh, duplicate, stale, poison, not-found and failed records
    result = a_processed_batch()
    # When its telemetry is published and the handler's metrics are flushed
    telemetry.publish(telemetry.measure(result), metrics)
    metrics.flush_metrics()
    found = emitted(capsys.readouterr().out)

    # Then the counters cover the whole batch, without dimensions
    assert find(found, "EventsReceived").values == [10]
    assert find(found, "StaleEventsSkipped").values == [1]
    assert find(found, "DuplicateEventsSkipped").values == [2]
    assert find(found, "JobsNotFound").values == [1]
    assert find(found, "PoisonRecords").values == [1]
    assert find(found, "RecordsRetried").values == [1]
    assert find(found, "AlertsSent").values == [3]
    # And enrichment latency is event time -> stored, for each fresh write
    latency = find(found, "EnrichmentLatency")
    assert latency.unit == "Milliseconds"
    assert sorted(latency.values) == [1000, 2000, 3000, 4000, 5000]
    # And completed jobs count by queue and final status (the array parent is not counted again)
    assert find(found, "JobsCompleted", queue="genomics-queue", status="FAILED").values == [1]
    assert find(found, "JobsCompleted", queue="etl-queue", status="SUCCEEDED").values == [1]
    assert find(found, "JobsCompleted", queue="media-queue", status="FAILED").values == [1]
    # And failures count by category and, separately, by queue
    assert find(found, "JobFailures", category="OUT_OF_MEMORY").values == [1]
    assert find(found, "JobFailures", category="APPLICATION_ERROR").values == [1]
    assert find(found, "JobFailures", queue="genomics-queue").values == [1]
    assert find(found, "JobFailures", queue="media-queue").values == [1]
    assert not [
        m for m in found if m.name == "JobFailures" and m.dimensions.get("queue") == "etl-queue"
    ]
    # And queue wait and run time are per queue, in seconds, one value per finished job
    wait = find(found, "QueueWaitSeconds", queue="genomics-queue")
    assert (wait.unit, wait.values) == ("Seconds", [151.288])
    assert find(found, "RunSeconds", queue="etl-queue").values == [926.725]
    assert find(found, "QueueBlockedEvents", queue="gpu-training-queue").values == [1]
    # And every unit is the catalogue's
    for metric in found:
        assert metric.unit == CATALOGUE[Metric(metric.name)][0].value, metric


def test_dimensions_stay_low_cardinality(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a processed batch
    result = a_processed_batch()
    job_ids = {p.record.job_id for p in result.processed if p.record}
    # When its metrics are published
    telemetry.publish(telemetry.measure(result), metrics)
    metrics.flush_metrics()
    found = emitted(capsys.readouterr().out)
    # Then only service, queue, status and category are dimensions, never a job id
    assert found
    for metric in found:
        assert set(metric.dimensions) <= ALLOWED_DIMENSIONS, metric
        assert not set(metric.dimensions.values()) & job_ids, metric
        # And each dimension set is one the catalogue declares for the metric
        declared = CATALOGUE[Metric(metric.name)][1]
        assert tuple(sorted(set(metric.dimensions) - {"service"})) in {
            tuple(sorted(s)) for s in declared
        }, metric


def test_each_dimension_set_is_its_own_document(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch with failures in two queues
    result = a_processed_batch()
    # When published
    telemetry.publish(telemetry.measure(result), metrics)
    metrics.flush_metrics()
    documents = emf_documents(capsys.readouterr().out)
    # Then no document mixes two values of one dimension (EMF applies one set to all its metrics)
    keys = [
        tuple(sorted((n, d[n]) for n in d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]))
        for d in documents
    ]
    assert len(keys) == len(set(keys))


def test_an_empty_batch_still_reports_zero_counters(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given nothing was processed
    # When its telemetry is published
    telemetry.publish(telemetry.measure(BatchResult()), metrics)
    metrics.flush_metrics()
    found = emitted(capsys.readouterr().out)
    # Then the counters are there as zeros (a value, not a gap, for graphs and alarms)
    names = {m.name for m in found}
    assert names == {metric.value for metric in telemetry.ALWAYS}
    assert all(m.values == [0] for m in found)


def test_redelivered_transitions_are_not_counted_again(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the OOM failure arrives again after it was stored
    oom = record("job-failed-oom")
    result = BatchResult(processed=[stored(oom, WriteOutcome.DUPLICATE)])
    # When published
    telemetry.publish(telemetry.measure(result), metrics)
    metrics.flush_metrics()
    found = emitted(capsys.readouterr().out)
    # Then it counts as a duplicate, not as a second failure
    assert find(found, "DuplicateEventsSkipped").values == [1]
    assert not {"JobFailures", "JobsCompleted", "EnrichmentLatency"} & {m.name for m in found}


def test_each_event_is_logged_with_its_job_id_as_correlation_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a processed batch
    result = a_processed_batch()
    # When its outcomes are logged
    with caplog.at_level(logging.INFO, logger="batchlens"):
        telemetry.log_outcomes(result)
    # Then every event with a record has one line carrying its job id as correlation id
    lines = [r for r in caplog.records if r.name == "batchlens"]
    with_records = [p for p in result.processed if p.record is not None]
    assert len(lines) == len(with_records)
    for line, processed in zip(lines, with_records, strict=True):
        assert processed.record is not None
        assert line.__dict__["correlation_id"] == processed.record.job_id
        assert line.__dict__["write"] == (processed.write.value if processed.write else None)
    # And a record that will be retried is a warning with its error
    retried = [r for r in lines if r.levelno == logging.WARNING]
    assert [r.__dict__["error"] for r in retried] == ["store failed: throttled"]


def test_metrics_without_a_namespace_never_fail_the_batch(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a Metrics object without a namespace (POWERTOOLS_METRICS_NAMESPACE unset)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    metrics = Metrics(service=SERVICE)
    assert not metrics.provider.namespace
    # When a batch is observed
    with caplog.at_level(logging.INFO, logger="batchlens"):
        telemetry.observe(a_processed_batch(), metrics)
    # Then nothing is emitted or raised, the per-event logs still go out, and a warning says why
    assert emf_documents(capsys.readouterr().out) == []
    assert any("POWERTOOLS_METRICS_NAMESPACE" in r.getMessage() for r in caplog.records)
    assert any(r.getMessage() == "Job event processed" for r in caplog.records)


# --- cases the tests above leave open (each fails with one mutant) ---

JOB_METRICS = {"JobsCompleted", "JobFailures", "QueueWaitSeconds", "RunSeconds"}


def published(
    result: BatchResult, metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> list[Emitted]:
    telemetry.publish(telemetry.measure(result), metrics)
    metrics.flush_metrics()
    return emitted(capsys.readouterr().out)


def test_a_running_job_is_not_counted_as_completed(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:  # T1
    found = published(
        BatchResult([stored(record("job-running"), WriteOutcome.FRESH)]), metrics, capsys
    )
    assert not JOB_METRICS & {m.name for m in found}, found


def test_a_job_that_failed_before_it_started_is_counted(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:  # T2
    # DEPENDENCY_FAILED: never started, so no queue wait and no run time
    job = record("job-failed-dependency")
    found = published(BatchResult([stored(job, WriteOutcome.FRESH)]), metrics, capsys)
    assert find(found, "JobsCompleted", queue="genomics-queue", status="FAILED").values == [1]
    assert find(found, "JobFailures", category="DEPENDENCY_FAILED").values == [1]
    assert not {"QueueWaitSeconds", "RunSeconds"} & {m.name for m in found}


def test_latency_is_never_negative(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:  # T8
    # an event stamped later than it was stored (clock skew between Batch and Lambda)
    job = record("job-succeeded")
    found = published(
        BatchResult([stored(job, WriteOutcome.FRESH, after_ms=-750)]), metrics, capsys
    )
    assert find(found, "EnrichmentLatency").values == [0]


def test_a_multinode_parent_is_not_counted_beside_its_node(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:  # T9
    parent, node = record("multinode-failed"), record("multinode-node-failed")
    result = BatchResult([stored(parent, WriteOutcome.FRESH), stored(node, WriteOutcome.FRESH)])
    found = published(result, metrics, capsys)
    assert find(found, "JobsCompleted", queue="mnp-efa-queue", status="FAILED").values == [1]
    assert find(found, "JobFailures", queue="mnp-efa-queue").values == [1]
    assert not [m for m in found if m.dimensions.get("category") == "UNKNOWN"]


def test_jobs_not_found_counts_jobs_not_events(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:  # T10
    gone = record("job-failed-spot").model_copy(update={"enrichment": Enrichment.NOT_FOUND})
    result = BatchResult([stored(gone, WriteOutcome.FRESH), stored(gone, WriteOutcome.DUPLICATE)])
    assert find(published(result, metrics, capsys), "JobsNotFound").values == [1]


def test_one_alert_delivered_twice_in_a_batch_counts_once(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:  # T11
    oom = record("job-failed-oom")
    result = BatchResult(
        [
            stored(oom, WriteOutcome.FRESH, alerted=True),
            stored(oom, WriteOutcome.DUPLICATE, alerted=True),
        ]
    )
    assert find(published(result, metrics, capsys), "AlertsSent").values == [1]


def test_a_metrics_failure_never_fails_the_batch(
    metrics: Metrics, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:  # T13
    def broken(result: BatchResult) -> list[telemetry.Measurement]:
        raise ValueError("boom")

    monkeypatch.setattr(telemetry, "measure", broken)
    with caplog.at_level(logging.INFO, logger="batchlens"):
        telemetry.observe(
            BatchResult([stored(record("job-succeeded"), WriteOutcome.FRESH)]), metrics
        )
    assert any(r.getMessage() == "Could not emit metrics" for r in caplog.records)
