"""Regression tests for what the fault-injection soak (tests/chaos) and the fuzzers found: a late
transition missing from the timeline, an alert re-sent after a partial publish failure, alerts
published too close to the function timeout, a parser crash failing a whole batch.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest
from mypy_boto3_sns import SNSClient

from batchlens import aws
from batchlens.history import HistoryTable
from batchlens.local import LocalStack
from batchlens.pipeline import TIMELINE_FAILED, Message
from tests.conftest import EnricherFactory, Json, batch_write_unprocessed, read_event, variant

pytestmark = pytest.mark.integration

Drain = Callable[[], list[Json]]


def messages(*events: Json | str) -> list[Message]:
    return [Message(str(uuid.uuid4()), event) for event in events]


def failed_job(job_id: str | None = None) -> Json:
    event = read_event("job-failed-oom")
    job_id = job_id or str(uuid.uuid4())
    arn = event["detail"]["jobArn"].rsplit("/", 1)[0] + f"/{job_id}"
    return variant(event, jobId=job_id, jobArn=arn)


def alerted(drain: Drain) -> list[str]:
    return [json.loads(n["Message"])["jobId"] for n in drain()]


@pytest.fixture
def sns(aws_session: boto3.Session, stack: LocalStack) -> SNSClient:
    return aws.client("sns", stack.settings(), aws_session)


def test_a_transition_arriving_after_a_newer_state_still_lands_in_the_timeline(
    make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given a job whose FAILED state is stored
    failed = read_event("job-failed-oom")
    enricher = make_enricher()
    enricher.process(messages(failed))

    # When its RUNNABLE event arrives late, in a batch of its own
    late = variant(
        failed,
        envelope={"time": "2025-03-14T09:00:00Z"},
        status="RUNNABLE",
        attempts=[],
        drop=["stoppedAt", "startedAt", "statusReason"],
    )
    result = enricher.process(messages(late))

    # Then it is a stale write (the latest state stays FAILED), but the timeline has it
    assert result.failures == {}
    stored = history.get_latest(failed["detail"]["jobId"])
    assert stored is not None
    assert stored.record["status"] == "FAILED"
    assert [t["status"] for t in history.timeline(failed["detail"]["jobId"])] == [
        "RUNNABLE",
        "FAILED",
    ]


def test_a_failure_whose_timeline_write_fails_alerts_once_on_the_redelivery(
    aws_session: boto3.Session,
    stack: LocalStack,
    make_enricher: EnricherFactory,
    history: HistoryTable,
    drain_alerts: Drain,
) -> None:
    # Given DynamoDB leaving every timeline item unprocessed (throttled), for now
    dynamodb = aws.client("dynamodb", stack.settings(), aws_session)
    hook: Callable[..., Any] = batch_write_unprocessed
    dynamodb.meta.events.register("before-call.dynamodb.BatchWriteItem", hook)
    enricher = make_enricher(dynamodb=dynamodb)
    event = failed_job()
    job_id = event["detail"]["jobId"]

    # When its failure is processed
    batch = messages(event)
    first = enricher.process(batch)

    # Then the record fails so that SQS brings its timeline item back, and its alert waits for
    # that redelivery (which is certain: alerting now could alert twice if the "sent" mark failed)
    assert first.failures == {batch[0].message_id: TIMELINE_FAILED}
    assert history.timeline(job_id) == []
    assert drain_alerts() == []

    # When SQS redelivers it and DynamoDB writes again
    dynamodb.meta.events.unregister("before-call.dynamodb.BatchWriteItem", hook)
    again = enricher.process(batch)

    # Then the timeline has it, and the alert goes out, once
    assert again.failures == {}
    assert [item["status"] for item in history.timeline(job_id)] == ["FAILED"]
    assert alerted(drain_alerts) == [job_id]
    assert enricher.process(batch).failures == {}
    assert drain_alerts() == []


def test_alerts_wait_for_the_redelivery_when_the_invocation_is_nearly_out_of_time(
    make_enricher: EnricherFactory, history: HistoryTable, drain_alerts: Drain
) -> None:
    # Given a failure processed with (almost) no time left in the invocation
    event = failed_job()
    enricher = make_enricher()
    first = enricher.process(messages(event), remaining_ms=1)

    # Then it is stored, but not published (a timeout between publish and ledger would re-send
    # it): the record fails so that SQS redelivers it
    assert history.get_latest(event["detail"]["jobId"]) is not None
    assert "too little time left" in next(iter(first.failures.values()))
    assert drain_alerts() == []

    # When SQS redelivers it to an invocation with time to spare, it alerts once
    again = enricher.process(messages(event), remaining_ms=60_000)
    assert again.failures == {}
    assert alerted(drain_alerts) == [event["detail"]["jobId"]]


def test_a_publish_failing_after_a_group_went_out_never_sends_that_group_again(
    make_enricher: EnricherFactory, sns: SNSClient, drain_alerts: Drain
) -> None:
    # Given 12 failing jobs (two PublishBatch groups), and SNS refusing every call after the first
    events = [failed_job() for _ in range(12)]
    calls: list[str] = []
    lock = threading.Lock()

    def second_call_fails(request: AWSPreparedRequest, **_: Any) -> None:
        # Raised, not answered: in-process moto's own before-send handler (which would publish)
        # runs after this more specific one, unless this one stops the call.
        with lock:
            calls.append(request.url)
            refuse = len(calls) > 1
        if refuse:
            raise ConnectionRefusedError("SNS is unreachable")

    hook: Callable[..., Any] = second_call_fails
    sns.meta.events.register("before-send.sns.PublishBatch", hook)
    enricher = make_enricher(sns=sns)

    # When the batch is processed
    batch = messages(*events)
    result = enricher.process(batch)

    # Then the first group went out and counts as alerted; only the second group's records fail
    first_group = alerted(drain_alerts)
    assert len(first_group) == 10
    failed = set(result.failures)
    assert len(failed) == 2
    assert sum(p.alerted for p in result.processed) == 10

    # When SQS redelivers the whole batch to an invocation whose SNS works
    sns.meta.events.unregister("before-send.sns.PublishBatch", hook)
    again = enricher.process(batch)

    # Then only the two that never went out are published now: nothing twice
    assert again.failures == {}
    second_group = alerted(drain_alerts)
    assert sorted(second_group) == sorted(
        e["detail"]["jobId"] for e in events if e["detail"]["jobId"] not in first_group
    )


def test_a_parser_crash_fails_only_its_own_record(
    make_enricher: EnricherFactory, history: HistoryTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a parser that crashes (not InvalidEvent) on one body
    from batchlens.events import parse_event

    def crashing(payload: Any) -> Any:
        if payload == "crash me":
            raise RecursionError("simulated parser bug")
        return parse_event(payload)

    monkeypatch.setattr("batchlens.pipeline.parse_event", crashing)
    good = failed_job()

    # When it is in a batch with a good event
    batch = messages("crash me", good)
    result = make_enricher().process(batch)

    # Then only that record fails, and the good one is stored
    assert set(result.failures) == {batch[0].message_id}
    assert result.processed[0].poison
    assert history.get_latest(good["detail"]["jobId"]) is not None
