"""The handler's metrics and logs at their edges: no namespace, a poison reason of 140 KB, and a job
stored by an invocation that then died."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from batchlens.local import FakeLambdaContext, LocalStack
from tests.conftest import SqsEventBuilder, read_event
from tests.handler_app import captured_logs, load_handler

pytestmark = pytest.mark.integration


@pytest.fixture
def app_without_namespace(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    module = load_handler()
    monkeypatch.setattr(cold_start, "is_cold_start", True)
    yield module
    module.metrics.clear_metrics()


def test_without_a_namespace_the_cold_start_metric_fails_every_invocation(
    app_without_namespace: ModuleType,
    make_sqs_event: SqsEventBuilder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given POWERTOOLS_METRICS_NAMESPACE unset: telemetry.observe promises "no metrics, a warning"
    event = make_sqs_event([read_event("job-succeeded")])
    # When the handler runs a cold start, then a warm invocation
    responses = [
        app_without_namespace.handler(event, FakeLambdaContext(function_name="enricher"))
        for _ in range(2)
    ]
    # Then both batches are acknowledged (the batch is stored; a metric must never fail it)
    assert responses == [{"batchItemFailures": []}] * 2


#: CloudWatch Logs splits a longer line into several events (256 KiB, 26 bytes of overhead).
LOG_EVENT_MAX_BYTES = 256 * 1024 - 26


@pytest.mark.parametrize("field", ["source", "detail-type"])
def test_a_poison_record_quoting_a_huge_field_stays_one_log_event(
    app: ModuleType, make_sqs_event: SqsEventBuilder, field: str
) -> None:
    from tests.conftest import variant

    # Given a message (under SQS's 256 KiB) whose source or detail-type is 140 KB long
    poison = variant(read_event("job-succeeded"), envelope={field: "x" * 140_000})
    event = make_sqs_event([poison])
    # When the handler reports it as poison
    with captured_logs(app) as output:
        response = app.handler(event, FakeLambdaContext(function_name="enricher"))
    assert len(response["batchItemFailures"]) == 1
    # Then every log line fits one CloudWatch Logs event (a split JSON line loses its fields,
    # message_id included, in Logs Insights)
    sizes = [len(line.encode()) for line in output.getvalue().splitlines()]
    assert max(sizes) <= LOG_EVENT_MAX_BYTES, sizes


def test_a_job_stored_by_an_invocation_that_timed_out_is_still_counted(
    app: ModuleType,
    make_sqs_event: SqsEventBuilder,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from batchlens.pipeline import Enricher

    # Given a failed job's event, and an invocation that stores it and then dies before it
    # returns (a Lambda timeout while alerting; a raise stands in for it)
    event = make_sqs_event([read_event("job-failed-oom")])
    with monkeypatch.context() as patch:

        def times_out(self: Enricher, *args: object) -> int:
            raise TimeoutError("Task timed out after 60.00 seconds")

        patch.setattr(Enricher, "_alert", times_out)
        with pytest.raises(TimeoutError):
            app.handler(event, FakeLambdaContext(function_name="enricher"))
    # When SQS redelivers the batch and it is processed
    assert app.handler(event, FakeLambdaContext(function_name="enricher")) == {
        "batchItemFailures": []
    }
    # Then the job's failure was counted once over the two invocations
    names = [
        definition["Name"]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and "_aws" in (document := json.loads(line))
        for directive in document["_aws"]["CloudWatchMetrics"]
        for definition in directive["Metrics"]
    ]
    assert names.count("JobsCompleted") == 1, names
    assert names.count("JobFailures") == 2, names  # by category and by queue
