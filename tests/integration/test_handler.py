"""The Enricher Lambda handler end to end on moto: SQS batches with partial failures, the bare
EventBridge event of `sam local invoke`, SQS redrive to the dead-letter queue, and secrets that
never reach the table, the topic or the logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest

from batchlens.history import HistoryTable
from batchlens.local import FakeLambdaContext, LocalStack, put_batch_event, sqs_event
from batchlens.pipeline import RecordFailed
from tests.conftest import Json, SqsEventBuilder, read_event, variant
from tests.handler_app import load_handler

pytestmark = pytest.mark.integration

AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_FAKEt0kenF0rRedacti0nTest5NotReal000"
DB_PASSWORD = "hunter2-prod-Zx9"


@pytest.fixture
def app(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """functions/enrich/app.py, freshly loaded, configured from the stack's environment."""
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    module = load_handler()  # a cold start
    yield module
    vars(module)["_enricher"] = None


def invoke(app: ModuleType, event: Json, context: FakeLambdaContext) -> Any:
    return app.handler(event, context)


def failed_ids(response: Json) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def alerts_in(session: boto3.Session, stack: LocalStack) -> list[Json]:
    sqs = session.client("sqs")
    received: list[Json] = []
    while batch := sqs.receive_message(QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in batch:
            received.append(json.loads(message["Body"]))
            sqs.delete_message(
                QueueUrl=stack.alert_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return received


# --- SQS batches ------------------------------------------------------------------------------


def test_one_bad_record_fails_only_itself(
    app: ModuleType,
    make_sqs_event: SqsEventBuilder,
    lambda_context: FakeLambdaContext,
    history: HistoryTable,
) -> None:
    # Given a batch of good events mixed with a non-JSON body, an unknown detail-type and an
    # event without a jobId
    good = [
        read_event("job-failed-oom"),
        read_event("job-succeeded"),
        read_event("service-job-failed"),
    ]
    unknown_type = variant(read_event("job-succeeded"), envelope={"detail-type": "Batch Job Mood"})
    no_job_id = variant(read_event("job-failed-spot"), drop=["jobId"])
    event = make_sqs_event(
        [good[0], "{this is not json", good[1], unknown_type, no_job_id, good[2]]
    )
    ids = [record["messageId"] for record in event["Records"]]

    # When the handler runs
    response = invoke(app, event, lambda_context)

    # Then exactly the three bad messages are reported for redelivery
    assert failed_ids(response) == {ids[1], ids[3], ids[4]}
    # And every good record is stored
    for sample in good:
        stored = history.get_latest(sample["detail"]["jobId"])
        assert stored is not None
        assert stored.record["eventId"] == sample["id"]


def test_the_handler_passes_on_each_records_receive_count(
    app: ModuleType,
    make_sqs_event: SqsEventBuilder,
    lambda_context: FakeLambdaContext,
    aws_session: boto3.Session,
    stack: LocalStack,
) -> None:
    # Given a job that failed and alerted, then a batch holding its FAILED message again (SQS's
    # second receive: the acknowledgement was lost) and its queue-blocked event, late, on its
    # first receive
    cancelled = read_event("job-cancelled-state-time-limit")
    blocked = read_event("job-queue-blocked-capacity")
    assert failed_ids(invoke(app, make_sqs_event([cancelled]), lambda_context)) == set()
    assert [a["MessageAttributes"]["status"]["Value"] for a in alerts_in(aws_session, stack)] == [
        "FAILED"
    ]
    event = make_sqs_event([blocked, cancelled])
    event["Records"][1]["attributes"]["ApproximateReceiveCount"] = "2"

    # When the handler runs; then the late event is stale, as alone: no queue-blocked alert for
    # a job that has already failed
    assert failed_ids(invoke(app, event, lambda_context)) == set()
    assert alerts_in(aws_session, stack) == []


def test_a_batch_whose_every_record_failed_is_reported_not_raised(
    app: ModuleType, make_sqs_event: SqsEventBuilder, lambda_context: FakeLambdaContext
) -> None:
    # Given a batch of one poison record (a quiet queue's batches are often one record)
    event = make_sqs_event([variant(read_event("job-failed-spot"), drop=["jobId"])])

    # When the handler runs; then it returns that record for redelivery instead of raising (a
    # raise would count as an invocation error, for the errors alarm meant for crashes)
    assert failed_ids(invoke(app, event, lambda_context)) == {event["Records"][0]["messageId"]}


def test_the_sample_sqs_batch_is_processed_without_failures(
    app: ModuleType, lambda_context: FakeLambdaContext, history: HistoryTable
) -> None:
    # Given the SQS event of events/sqs-batch.json (three events)
    event = read_event("sqs-batch")
    bodies = [json.loads(record["body"]) for record in event["Records"]]

    # When the handler runs, then nothing fails and each job is stored
    assert invoke(app, event, lambda_context) == {"batchItemFailures": []}
    for body in bodies:
        stored = history.get_latest(body["detail"]["jobId"])
        assert stored is not None
        assert stored.record["status"] == body["detail"]["status"]


def test_clients_and_settings_are_built_once_per_cold_start(
    app: ModuleType, make_sqs_event: SqsEventBuilder, lambda_context: FakeLambdaContext
) -> None:
    # Given a fresh execution environment
    assert app._enricher is None

    # When two invocations run
    invoke(app, make_sqs_event([read_event("job-runnable")]), lambda_context)
    first = app._enricher
    invoke(app, make_sqs_event([read_event("job-running")]), lambda_context)

    # Then they share one Enricher
    assert first is not None
    assert app._enricher is first


@dataclass(frozen=True, slots=True)
class _ColdStartContext(FakeLambdaContext):
    """A context whose remaining time is what is left once the cold start has built the
    Enricher: 60 s before, 1 ms after (as if building its clients took the rest)."""

    app: ModuleType | None = None

    def get_remaining_time_in_millis(self) -> int:
        assert self.app is not None
        return 60_000 if self.app._enricher is None else 1


def test_the_deadline_counts_the_time_a_cold_start_spends_building_the_enricher(
    app: ModuleType,
    make_sqs_event: SqsEventBuilder,
    aws_session: boto3.Session,
    stack: LocalStack,
) -> None:
    # Given a cold start that leaves the invocation almost no time once its clients are built
    event = make_sqs_event([read_event("job-failed-oom")])
    context = _ColdStartContext(aws_request_id="cold-start", app=app)

    # When the handler runs; then the failure's alert waits for the redelivery instead of going
    # out with no time left to record it sent (the remaining time read before the Enricher was
    # built claimed a whole minute)
    response = invoke(app, event, context)
    assert failed_ids(response) == {event["Records"][0]["messageId"]}
    assert alerts_in(aws_session, stack) == []


# --- a bare EventBridge event (sam local invoke, direct targets) -----------------------------


def test_a_bare_eventbridge_event_returns_its_record(
    app: ModuleType,
    lambda_context: FakeLambdaContext,
    aws_session: boto3.Session,
    stack: LocalStack,
) -> None:
    # Given one FAILED event, as `sam local invoke -e events/job-failed-oom.json` passes it
    event = read_event("job-failed-oom")

    # When the handler runs
    response = invoke(app, event, lambda_context)

    # Then it returns the enriched record, stored fresh and alerted
    assert response["record"]["jobId"] == event["detail"]["jobId"]
    assert response["record"]["eventId"] == event["id"]
    assert response["record"]["failure"]["category"] == "OUT_OF_MEMORY"
    assert response["write"] == "FRESH"
    assert response["alerted"] is True
    (notification,) = alerts_in(aws_session, stack)
    assert json.loads(notification["Message"]) == response["record"]


def test_a_bare_event_delivered_again_is_a_duplicate_without_a_second_alert(
    app: ModuleType,
    lambda_context: FakeLambdaContext,
    aws_session: boto3.Session,
    stack: LocalStack,
) -> None:
    event = read_event("job-failed-oom")
    invoke(app, event, lambda_context)
    again = invoke(app, event, lambda_context)
    assert again["write"] == "DUPLICATE"
    assert again["alerted"] is False
    assert len(alerts_in(aws_session, stack)) == 1


def test_a_bare_invalid_event_raises_so_the_invoker_retries(
    app: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    event = variant(read_event("job-failed-oom"), drop=["jobId"])
    with pytest.raises(RecordFailed, match="jobId"):
        invoke(app, event, lambda_context)


# --- SQS redrive --------------------------------------------------------------------------


def test_a_poison_event_is_redriven_to_the_dlq_while_good_ones_are_stored(
    app: ModuleType,
    aws_session: boto3.Session,
    stack: LocalStack,
    lambda_context: FakeLambdaContext,
    history: HistoryTable,
) -> None:
    # Given a good event and a poison one (no jobId) sent through EventBridge, as Batch would
    good = read_event("job-failed-oom")
    poison = variant(read_event("job-failed-spot"), drop=["jobId"])
    put_batch_event(aws_session, None, good)
    put_batch_event(aws_session, None, poison)
    sqs = aws_session.client("sqs")
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=stack.event_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    # When Lambda's poller receives, invokes and deletes what succeeded, until the queue is empty
    receives = 0
    for _ in range(stack.max_receive_count + 2):
        received = sqs.receive_message(
            QueueUrl=stack.event_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not received:
            break
        receives += 1
        lambda_event = sqs_event([dict(m) for m in received], queue_arn)
        failures = failed_ids(invoke(app, lambda_event, lambda_context))
        for message in received:
            if message["MessageId"] in failures:  # back to the queue now, not after 6 minutes
                sqs.change_message_visibility(
                    QueueUrl=stack.event_queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                sqs.delete_message(
                    QueueUrl=stack.event_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    # Then the poison event was received max_receive_count times, then moved to the DLQ
    assert receives == stack.max_receive_count
    dead = sqs.receive_message(QueueUrl=stack.dead_letter_queue_url, MaxNumberOfMessages=10)
    dead_bodies = [json.loads(m["Body"]) for m in dead.get("Messages", [])]
    assert len(dead_bodies) == 1
    assert "jobId" not in dead_bodies[0]["detail"]
    assert dead_bodies[0]["detail"]["jobName"] == poison["detail"]["jobName"]
    # And the good event was stored on the first pass, and alerted once
    stored = history.get_latest(good["detail"]["jobId"])
    assert stored is not None
    assert stored.record["status"] == "FAILED"
    assert len(alerts_in(aws_session, stack)) == 1


# --- secrets ----------------------------------------------------------------------------------


def test_planted_secrets_never_reach_the_table_the_topic_or_the_logs(
    app: ModuleType,
    aws_session: boto3.Session,
    stack: LocalStack,
    make_sqs_event: SqsEventBuilder,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the app-error job (DB_PASSWORD in its environment, a ghp_ token in its command)
    # with an AWS key id planted in its reasons, and a poison record that echoes a key
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    event = read_event("job-failed-app-error")
    event["detail"]["statusReason"] = f"Upload refused for {AWS_KEY_ID}"
    event["detail"]["attempts"][0]["statusReason"] = f"Essential container exited ({AWS_KEY_ID})"
    event["detail"]["container"]["reason"] = f"auth failed: password={DB_PASSWORD}"
    poison = variant(
        read_event("job-failed-oom"), envelope={"detail-type": f"Batch Job {AWS_KEY_ID}"}
    )
    batch = make_sqs_event([event, poison])
    caplog.set_level(logging.DEBUG, logger="batchlens")

    # When the handler runs
    response = invoke(app, batch, lambda_context)

    # Then the good record was stored and alerted, with its secrets masked and counted
    assert failed_ids(response) == {batch["Records"][1]["messageId"]}
    items = aws_session.client("dynamodb").scan(TableName=stack.table_name)["Items"]
    stored = json.dumps(items)
    notifications = json.dumps(alerts_in(aws_session, stack))
    assert event["detail"]["jobId"] in stored
    assert event["detail"]["jobId"] in notifications
    latest = next(i for i in items if i["sk"]["S"] == "LATEST")
    assert json.loads(latest["record"]["S"])["redacted"] >= 3
    # And the logs were written (the poison record is reported), without any secret
    logs = (
        "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        + capsys.readouterr().out
    )
    assert "Poison record" in logs
    for secret in (AWS_KEY_ID, GITHUB_TOKEN, DB_PASSWORD):
        assert secret not in stored
        assert secret not in notifications
        assert secret not in logs
