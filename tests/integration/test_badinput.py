"""The bad-input corpus (tests/badinput/corpus.py) through the real handler on moto: no input
crashes a batch, each poison record is reported alone with a log line that says why and is
redriven to the dead-letter queue, and every good or merely hostile record beside it is stored.
"""

from __future__ import annotations

import json
import uuid
from types import ModuleType
from typing import Any

import boto3
import pytest

from batchlens.history import HistoryTable
from batchlens.local import FakeLambdaContext, LocalStack, sqs_event
from tests.badinput.corpus import BadInput, build, with_distinct_jobs
from tests.conftest import Json, SqsEventBuilder, read_event, variant
from tests.handler_app import captured_logs

pytestmark = pytest.mark.integration


@pytest.fixture
def corpus() -> list[BadInput]:
    return with_distinct_jobs(build())


def good_events() -> list[Json]:
    events = [read_event("job-failed-oom"), read_event("service-job-failed")]
    for event in events:
        job_id = str(uuid.uuid4())
        event["detail"]["jobId"] = job_id
        event["detail"]["jobArn"] = event["detail"]["jobArn"].rsplit("/", 1)[0] + f"/{job_id}"
    return [variant(event) for event in events]


def log_lines(text: str) -> list[Json]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_the_corpus_is_large_and_varied(corpus: list[BadInput]) -> None:
    assert len(corpus) >= 30
    assert sum(item.poison for item in corpus) >= 30
    assert len({item.name for item in corpus}) == len(corpus)


def test_each_bad_input_fails_alone_says_why_and_good_records_beside_it_are_stored(
    app: ModuleType,
    corpus: list[BadInput],
    make_sqs_event: SqsEventBuilder,
    lambda_context: FakeLambdaContext,
    history: HistoryTable,
) -> None:
    # Given one batch: a good event, the whole corpus, another good event
    good = good_events()
    bodies: list[str | Json] = [good[0], *[item.body for item in corpus], good[1]]
    event = make_sqs_event(bodies)
    ids = [record["messageId"] for record in event["Records"]]
    by_id = dict(zip(ids[1:-1], corpus, strict=True))

    # When the real handler runs
    with captured_logs(app) as output:
        response = app.handler(event, lambda_context)

    # Then exactly the poison records are reported for redelivery
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert failed == {message_id for message_id, item in by_id.items() if item.poison}
    # And each has an ERROR log line, naming its message id, that says why
    lines = log_lines(output.getvalue())
    for message_id, item in by_id.items():
        if not item.poison:
            continue
        said = [
            line["message"]
            for line in lines
            if line.get("message_id") == message_id and line["message"].startswith("Poison record")
        ]
        assert said, f"no log line for {item.name}"
        assert item.why in said[0], (item.name, said[0])
    # And the good and the merely hostile inputs were stored
    for body in [*good, *(json.loads(i.body) for i in corpus if not i.poison)]:
        stored = history.get_latest(body["detail"]["jobId"])
        assert stored is not None, body["detail"]["jobName"]
        assert stored.record["eventId"] == body["id"]


def test_hostile_but_valid_inputs_are_stored_cut_to_size_and_masked(
    app: ModuleType,
    corpus: list[BadInput],
    make_sqs_event: SqsEventBuilder,
    lambda_context: FakeLambdaContext,
    history: HistoryTable,
    aws_session: boto3.Session,
    stack: LocalStack,
) -> None:
    hostile = {item.name: json.loads(item.body) for item in corpus if not item.poison}
    response = app.handler(make_sqs_event(list(hostile.values())), lambda_context)
    assert response == {"batchItemFailures": []}

    def stored(name: str) -> dict[str, Any]:
        latest = history.get_latest(hostile[name]["detail"]["jobId"])
        assert latest is not None
        return latest.record

    thousand = stored("1,000 attempts")
    assert thousand["truncated"] is True
    assert thousand["attempts"][0]["number"] == 1
    assert thousand["attempts"][-1]["number"] == 1_000
    megabyte = stored("enormous reason (1 MB)")
    assert megabyte["truncated"] is True
    assert len(megabyte["statusReason"]) <= 8_192
    assert stored("unicode everywhere")["jobName"] == "データ処理-🚀-\u200b-עברית"
    assert stored("optional fields null")["attempts"] == []
    assert "hunter2-corpus" not in json.dumps(stored("huge environment"))
    # And their alerts reached the subscriber within SNS's limit, the big ones truncated
    sqs = aws_session.client("sqs")
    messages = sqs.receive_message(QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10)
    published = {}
    for message in messages.get("Messages", []):
        body = json.loads(message["Body"])["Message"]
        assert len(body.encode()) <= 262_144
        record = json.loads(body)
        published[record["jobId"]] = record
    assert published[hostile["1,000 attempts"]["detail"]["jobId"]]["truncated"] is True
    assert published[hostile["enormous reason (1 MB)"]["detail"]["jobId"]]["truncated"] is True


def test_poison_records_alone_are_redriven_to_the_dead_letter_queue(
    app: ModuleType,
    corpus: list[BadInput],
    aws_session: boto3.Session,
    stack: LocalStack,
    lambda_context: FakeLambdaContext,
) -> None:
    # Given every corpus input that fits an SQS message, and two good events, on the event queue
    sqs = aws_session.client("sqs")
    sendable = [item for item in corpus if item.fits_sqs]
    bodies = [item.body for item in sendable] + [json.dumps(e) for e in good_events()]
    for body in bodies:
        sqs.send_message(QueueUrl=stack.event_queue_url, MessageBody=body)
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=stack.event_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    # When Lambda's poller receives batches, invokes, deletes what succeeded, until it is empty
    for _ in range(stack.max_receive_count * 10):
        received: list[Any] = []
        while batch := sqs.receive_message(
            QueueUrl=stack.event_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            received += batch
        if not received:
            break
        response = app.handler(sqs_event(received, queue_arn), lambda_context)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for message in received:
            if message["MessageId"] in failed:  # visible again now, not after 6 minutes
                sqs.change_message_visibility(
                    QueueUrl=stack.event_queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                sqs.delete_message(
                    QueueUrl=stack.event_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    # Then the dead-letter queue holds exactly the poison inputs
    dead: list[str] = []
    while batch := sqs.receive_message(
        QueueUrl=stack.dead_letter_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300
    ).get("Messages", []):
        dead += [message["Body"] for message in batch]
    assert sorted(dead) == sorted(item.body for item in sendable if item.poison)
