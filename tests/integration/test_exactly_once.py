"""Exactly one alert per (job, status, attempt): duplicate and concurrent deliveries, and crashes.

Five "Lambda instances" (Enrichers with their own clients, in threads) process the same FAILED
event at the same moment against moto's server on 127.0.0.1. DynamoDB applies a conditional write
to one item atomically; moto checks and writes in two steps, so its server here serves one
request at a time (tests/moto_server.py). Then the two crash windows are asserted as documented
in README.md ("Alerts: email, Slack, chat"): a crash after the alert was marked sent never
re-sends it; a crash between the publish and that mark re-sends it once, after the claim expires
with the invocation.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from batchlens import aws, local
from batchlens.pipeline import Enricher, Message, Processed
from tests.conftest import Json, read_event
from tests.moto_server import locked_moto_server

pytestmark = pytest.mark.integration

BUSY = "alert is being published by another invocation"


class Crash(BaseException):
    """The execution environment dying (not an exception the code could catch and handle)."""


def die(**_: Any) -> None:
    raise Crash


@pytest.fixture
def endpoint(aws_credentials: None) -> Iterator[str]:
    with locked_moto_server() as endpoint_url:
        yield endpoint_url


@pytest.fixture
def session(endpoint: str) -> boto3.Session:
    return boto3.Session(region_name="us-east-1")


@pytest.fixture
def stack(session: boto3.Session, endpoint: str) -> local.LocalStack:
    return local.create_stack(session, endpoint_url=endpoint)


class PublishCounter:
    """Counts the alerts SNS accepted, across every Enricher's client."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.published: list[str] = []

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        with self.lock:
            self.published += [entry["Id"] for entry in parsed.get("Successful", [])]


@pytest.fixture
def counter() -> PublishCounter:
    return PublishCounter()


@pytest.fixture
def make_enricher(
    session: boto3.Session, stack: local.LocalStack, counter: PublishCounter
) -> Callable[..., Enricher]:
    """A new Enricher with its own clients: one Lambda execution environment.

    `dies_after_publish`: the environment dies the moment SNS has accepted a publish.
    """

    def make(dies_after_publish: bool = False) -> Enricher:
        settings = stack.settings()
        sns = aws.client("sns", settings, session)
        sns.meta.events.register("after-call.sns.PublishBatch", counter)
        if dies_after_publish:
            sns.meta.events.register("after-call.sns.PublishBatch", die)
        return Enricher(
            settings,
            batch=aws.client("batch", settings, session),
            dynamodb=aws.client("dynamodb", settings, session),
            sns=sns,
            logs=aws.client("logs", settings, session),
        )

    return make


def delivery(event: Json) -> Message:
    """One SQS delivery of `event`: every redelivery has a new message id."""
    return Message(str(uuid.uuid4()), json.dumps(event))


def subscriber_messages(session: boto3.Session, stack: local.LocalStack) -> list[Json]:
    sqs = session.client("sqs", endpoint_url=stack.endpoint_url)
    received: list[Json] = []
    while batch := sqs.receive_message(
        QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages", []):
        for message in batch:
            received.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(
                QueueUrl=stack.alert_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return received


def test_five_concurrent_deliveries_of_one_failure_publish_once(
    make_enricher: Callable[..., Enricher],
    counter: PublishCounter,
    session: boto3.Session,
    stack: local.LocalStack,
) -> None:
    # Given one FAILED event delivered five times, to five execution environments at once
    event = read_event("job-failed-app-error")
    enrichers = [make_enricher() for _ in range(5)]
    barrier = threading.Barrier(len(enrichers))
    outcomes: list[Processed] = []
    lock = threading.Lock()

    def deliver(enricher: Enricher) -> None:
        barrier.wait()
        (processed,) = enricher.process([delivery(event)], remaining_ms=60_000).processed
        with lock:
            outcomes.append(processed)

    # When they all process it concurrently
    threads = [threading.Thread(target=deliver, args=(e,)) for e in enrichers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then exactly one published; the others saw it done, or busy (and go back to SQS)
    assert len(outcomes) == 5
    assert counter.published == ["0"]
    assert sum(p.alerted for p in outcomes) == 1
    assert {p.error for p in outcomes} <= {None, BUSY}

    # And when SQS redelivers the busy ones, they find the alert sent and publish nothing
    retries = [p for p in outcomes if p.error == BUSY]
    for _ in retries:
        (again,) = make_enricher().process([delivery(event)], remaining_ms=60_000).processed
        assert again.error is None
        assert not again.alerted
    assert len(counter.published) == 1
    (alert,) = subscriber_messages(session, stack)
    assert alert["jobId"] == event["detail"]["jobId"]


def test_a_crash_after_the_alert_is_marked_sent_never_sends_it_again(
    make_enricher: Callable[..., Enricher], counter: PublishCounter
) -> None:
    # Given an invocation published the alert and marked it sent, then died before SQS deleted
    # the message (the acknowledgement never happened)
    event = read_event("job-failed-spot")
    (first,) = make_enricher().process([delivery(event)], remaining_ms=60_000).processed
    assert first.alerted

    # When SQS redelivers the message to another environment
    (again,) = make_enricher().process([delivery(event)], remaining_ms=60_000).processed

    # Then it is acknowledged without a second alert
    assert again.error is None
    assert not again.alerted
    assert len(counter.published) == 1


def test_a_crash_between_publish_and_the_sent_mark_resends_once_after_the_claim_expires(
    make_enricher: Callable[..., Enricher], counter: PublishCounter
) -> None:
    # Given an invocation with 3 s left dies the moment SNS has accepted its publish: the
    # alert is out, but the invocation never marked it sent (3 s: the redelivery below must
    # come within the claim even on a loaded machine)
    event = read_event("job-failed-oom")
    crashing = make_enricher(dies_after_publish=True)
    with pytest.raises(Crash):
        crashing.process([delivery(event)], remaining_ms=3_000)
    assert len(counter.published) == 1

    # When SQS redelivers while the dead invocation's claim still holds
    (during,) = make_enricher().process([delivery(event)], remaining_ms=60_000).processed

    # Then nothing is sent and the message goes back to the queue
    assert during.error == BUSY
    assert len(counter.published) == 1

    # When it is redelivered after the claim expired (with the dead invocation's time)
    time.sleep(3.5)
    (after,) = make_enricher().process([delivery(event)], remaining_ms=60_000).processed

    # Then the alert goes out a second time (at least once: SNS cannot take a publish back), and
    # from then on it is marked sent
    assert after.alerted
    assert len(counter.published) == 2
    (last,) = make_enricher().process([delivery(event)], remaining_ms=60_000).processed
    assert last.error is None
    assert not last.alerted
    assert len(counter.published) == 2
