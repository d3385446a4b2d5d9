"""The real handler on moto: the EMF metrics, the cold-start metric and the structured logs one
SQS batch produces, as Lambda would ship them to CloudWatch (everything is on stdout).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from batchlens.local import FakeLambdaContext, LocalStack
from tests.conftest import SqsEventBuilder, read_event
from tests.handler_app import load_handler

pytestmark = pytest.mark.integration


@pytest.fixture
def app(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """functions/enrich/app.py freshly loaded with the stack's environment (tracing off)."""
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"):
        monkeypatch.delenv(name, raising=False)
    module = load_handler()
    monkeypatch.setattr(cold_start, "is_cold_start", True)
    # Powertools keeps metrics in state every Metrics instance shares: start from none, whatever
    # an earlier test in this process left unflushed.
    module.metrics.clear_metrics()
    yield module
    module.metrics.clear_metrics()


def stdout_documents(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def metric_values(documents: list[dict[str, Any]]) -> dict[tuple[str, frozenset[Any]], list[float]]:
    """(metric name, its dimensions) -> its values, over every EMF document."""
    found: dict[tuple[str, frozenset[Any]], list[float]] = {}
    for document in documents:
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == "batchlens"
            for names in directive["Dimensions"]:
                dimensions = frozenset((name, document[name]) for name in names)
                for definition in directive["Metrics"]:
                    value = document[definition["Name"]]
                    found[(definition["Name"], dimensions)] = (
                        value if isinstance(value, list) else [value]
                    )
    return found


def test_a_batch_emits_metrics_and_correlated_logs(
    app: ModuleType,
    stack: LocalStack,
    make_sqs_event: SqsEventBuilder,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an SQS batch with an OOM failure, a success and a body that is not an event
    oom, succeeded = read_event("job-failed-oom"), read_event("job-succeeded")
    event = make_sqs_event([oom, succeeded, "not json"])
    # (the Powertools log handler keeps the stdout it was built with: point it at the capture)
    monkeypatch.setattr(app.logger.registered_handler, "stream", sys.stdout)
    capsys.readouterr()
    # When the handler processes it on a cold start
    response = app.handler(event, FakeLambdaContext(function_name="enricher"))
    documents = stdout_documents(capsys.readouterr().out)
    metrics = metric_values(documents)
    service = ("service", "batchlens")

    # Then only the poison record is reported back to SQS
    assert len(response["batchItemFailures"]) == 1
    # And the cold start, the batch counters and the per-queue/category metrics are emitted
    assert metrics[("ColdStart", frozenset({service, ("function_name", "enricher")}))] == [1]
    assert metrics[("EventsReceived", frozenset({service}))] == [3]
    assert metrics[("PoisonRecords", frozenset({service}))] == [1]
    assert metrics[("AlertsSent", frozenset({service}))] == [1]
    assert metrics[("JobFailures", frozenset({service, ("category", "OUT_OF_MEMORY")}))] == [1]
    assert metrics[("JobFailures", frozenset({service, ("queue", "genomics-queue")}))] == [1]
    completed = (
        "JobsCompleted",
        frozenset({service, ("queue", "etl-queue"), ("status", "SUCCEEDED")}),
    )
    assert metrics[completed] == [1]
    # And enrichment latency has one value per stored event (the samples are from 2025: large)
    latencies = metrics[("EnrichmentLatency", frozenset({service}))]
    assert len(latencies) == 2
    assert all(value > 0 for value in latencies)

    # And each processed event has one log line with its job id as the correlation id
    logs = [d for d in documents if "_aws" not in d]
    processed = {d["correlation_id"]: d for d in logs if d.get("message") == "Job event processed"}
    assert set(processed) == {oom["detail"]["jobId"], succeeded["detail"]["jobId"]}
    assert processed[oom["detail"]["jobId"]]["category"] == "OUT_OF_MEMORY"
    assert processed[oom["detail"]["jobId"]]["alerted"] is True
    assert all(d["service"] == "batchlens" for d in processed.values())


def test_a_bare_event_is_measured_too(app: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    # Given one bare EventBridge event, as `sam local invoke -e events/…` sends it
    event = read_event("job-succeeded")
    capsys.readouterr()
    # When the handler processes it
    result = app.handler(event, FakeLambdaContext())
    metrics = metric_values(stdout_documents(capsys.readouterr().out))
    # Then it is stored and counted like a batch of one
    assert result["write"] == "FRESH"
    assert metrics[("EventsReceived", frozenset({("service", "batchlens")}))] == [1]
    key = ("RunSeconds", frozenset({("service", "batchlens"), ("queue", "etl-queue")}))
    assert metrics[key] == [926.725]


def test_a_batch_without_failures_is_measured(
    app: ModuleType, make_sqs_event: SqsEventBuilder, capsys: pytest.CaptureFixture[str]
) -> None:  # A2
    # Given a batch in which every record is stored (the common case)
    event = make_sqs_event([read_event("job-failed-oom"), read_event("job-succeeded")])
    capsys.readouterr()
    # When the handler processes it
    response = app.handler(event, FakeLambdaContext(function_name="enricher"))
    metrics = metric_values(stdout_documents(capsys.readouterr().out))
    # Then nothing is retried and its metrics still go out
    service = ("service", "batchlens")
    assert response == {"batchItemFailures": []}
    assert metrics[("EventsReceived", frozenset({service}))] == [2]
    assert metrics[("JobFailures", frozenset({service, ("category", "OUT_OF_MEMORY")}))] == [1]


def test_the_same_alert_twice_in_one_batch_counts_once(
    app: ModuleType, make_sqs_event: SqsEventBuilder, capsys: pytest.CaptureFixture[str]
) -> None:  # T11, through the real pipeline
    oom = read_event("job-failed-oom")
    event = make_sqs_event([oom, oom])
    capsys.readouterr()
    app.handler(event, FakeLambdaContext(function_name="enricher"))
    metrics = metric_values(stdout_documents(capsys.readouterr().out))
    assert metrics[("AlertsSent", frozenset({("service", "batchlens")}))] == [1]


def test_tracing_patches_only_boto3_and_records_no_responses(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:  # A4, A5
    # Given tracing switched on, and Powertools' Tracer observed as the handler builds it
    import aws_lambda_powertools

    seen: dict[str, Any] = {}

    class Observed(aws_lambda_powertools.Tracer):
        def __init__(self, **options: Any) -> None:
            seen["tracer"] = options
            super().__init__(**options, disabled=True)

        def capture_lambda_handler(self, *args: Any, **options: Any) -> Any:
            seen.setdefault("handler", options)  # Powertools calls it again itself
            return super().capture_lambda_handler(*args, **options)

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setattr(aws_lambda_powertools, "Tracer", Observed)
    # When the handler is wrapped
    app.traced(lambda event, context: {})
    # Then only boto3 is patched (cold start) and no response (job details) goes into a trace
    assert seen["tracer"] == {"patch_modules": ["boto3"]}
    assert seen["handler"] == {"capture_response": False}
