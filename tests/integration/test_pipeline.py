"""The pipeline on moto: events arrive late, out of order and twice, and the history still never
moves a job backwards, while every alert goes out exactly once, through PublishBatch. (Concurrent
invocations race over moto's server, one request at a time: test_exactly_once, test_concurrency.)
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from mypy_boto3_dynamodb import DynamoDBClient
from mypy_boto3_sns import SNSClient

from batchlens import aws
from batchlens.history import LATEST_SK, HistoryTable, WriteOutcome, job_pk
from batchlens.local import LocalStack
from batchlens.pipeline import Enricher, Message
from tests.conftest import (
    EnricherFactory,
    Json,
    read_event,
    sample_event_names,
    variant,
    with_second_attempt,
)

pytestmark = pytest.mark.integration

Drain = Callable[[], list[Json]]


def messages(*events: Json) -> list[Message]:
    return [Message(str(uuid.uuid4()), event) for event in events]


def alerted_job_ids(notifications: list[Json]) -> list[str]:
    """The jobId of each SNS notification the subscriber queue received (its `sqs` body)."""
    return [json.loads(n["Message"])["jobId"] for n in notifications]


def with_job_id(event: Json, job_id: str) -> Json:
    arn = event["detail"]["jobArn"].rsplit("/", 1)[0] + f"/{job_id}"
    return variant(event, jobId=job_id, jobArn=arn)


def calls_to(client: Any, event_name: str, key: str | None = None) -> list[Any]:
    """Record the parameters (or one of them) of every call of one operation on a client."""
    seen: list[Any] = []
    lock = threading.Lock()

    def record(params: dict[str, Any], **_: Any) -> None:
        with lock:
            seen.append(params[key] if key else dict(params))

    client.meta.events.register(f"provide-client-params.{event_name}", record)
    return seen


@pytest.fixture
def dynamodb(aws_session: boto3.Session, stack: LocalStack) -> DynamoDBClient:
    return aws.client("dynamodb", stack.settings(), aws_session)


@pytest.fixture
def sns(aws_session: boto3.Session, stack: LocalStack) -> SNSClient:
    return aws.client("sns", stack.settings(), aws_session)


def running_before(failed: Json) -> Json:
    """The RUNNING event of the failed job's last attempt, stamped before it failed."""
    detail = failed["detail"]
    last = detail["attempts"][-1]
    return variant(
        failed,
        envelope={"time": "2025-03-14T09:00:00Z"},
        status="RUNNING",
        attempts=detail["attempts"][:-1],
        startedAt=last["startedAt"],
        drop=["stoppedAt", "statusReason"],
    )


# --- ordering -------------------------------------------------------------------------------


def test_a_stale_event_never_overwrites_a_newer_state_and_never_alerts(
    make_enricher: EnricherFactory, history: HistoryTable, drain_alerts: Drain
) -> None:
    # Given a job whose FAILED event has been processed
    failed = read_event("job-failed-oom")
    enricher = make_enricher(ALERT_ON="FAILED,RUNNING")
    first = enricher.process(messages(failed))
    assert first.processed[0].write is WriteOutcome.FRESH

    # When its older RUNNING event arrives in a later batch (even with RUNNING alerting)
    late = enricher.process(messages(running_before(failed)))

    # Then the latest item is still FAILED, the late event is a stale success, and only the
    # failure was ever alerted
    stored = history.get_latest(failed["detail"]["jobId"])
    assert stored is not None
    assert stored.record["status"] == "FAILED"
    assert stored.record["eventId"] == failed["id"]
    assert late.failures == {}
    assert late.processed[0].write is WriteOutcome.STALE
    assert late.processed[0].alerted is False
    assert alerted_job_ids(drain_alerts()) == [failed["detail"]["jobId"]]


LIFECYCLE = ("job-runnable", "job-running", "job-succeeded")


@pytest.mark.parametrize("order", list(itertools.permutations(LIFECYCLE)))
def test_out_of_order_events_in_one_batch_make_one_write_of_the_newest(
    order: tuple[str, ...],
    make_enricher: EnricherFactory,
    dynamodb: DynamoDBClient,
    history: HistoryTable,
    drain_alerts: Drain,
) -> None:
    # Given RUNNABLE, RUNNING and SUCCEEDED of one job, shuffled into one batch
    events = [read_event(name) for name in order]
    job_id = events[0]["detail"]["jobId"]
    updates = calls_to(dynamodb, "dynamodb.UpdateItem")

    # When the batch is processed
    result = make_enricher(dynamodb=dynamodb).process(messages(*events))

    # Then one conditional write stored SUCCEEDED as the job's latest state
    latest_writes = [u for u in updates if u["Key"]["sk"]["S"] == LATEST_SK]
    assert len(latest_writes) == 1
    assert latest_writes[0]["Key"]["pk"]["S"] == job_pk(job_id)
    assert "ConditionExpression" in latest_writes[0]
    stored = history.get_latest(job_id)
    assert stored is not None
    assert stored.record["status"] == "SUCCEEDED"
    # And every transition is in the timeline, oldest first; nothing alerted
    assert [t["status"] for t in history.timeline(job_id)] == ["RUNNABLE", "RUNNING", "SUCCEEDED"]
    assert result.failures == {}
    assert drain_alerts() == []


def test_a_retry_cycle_moves_forward_through_runnable_again(
    make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given a job that ran, lost its host, and went back to RUNNABLE for attempt 2
    retried = read_event("job-retried-runnable")
    first_run = variant(
        retried,
        envelope={"time": "2025-03-14T13:00:00Z"},
        status="RUNNING",
        attempts=[],
        startedAt=retried["detail"]["attempts"][0]["startedAt"],
    )
    enricher = make_enricher()
    enricher.process(messages(first_run))

    # When the RUNNABLE of the retry arrives (RUNNABLE ranks below RUNNING)
    result = enricher.process(messages(retried))

    # Then it is the newer state: one more attempt has finished
    assert result.processed[0].write is WriteOutcome.FRESH
    stored = history.get_latest(retried["detail"]["jobId"])
    assert stored is not None
    assert stored.record["status"] == "RUNNABLE"
    assert stored.record["failure"]["batchWillRetry"] is True


# --- exactly one alert ------------------------------------------------------------------------


def test_a_failure_delivered_in_two_batches_alerts_once(
    make_enricher: EnricherFactory, drain_alerts: Drain
) -> None:
    # Given one FAILED event
    failed = read_event("job-failed-app-error")
    enricher = make_enricher()

    # When SQS delivers it twice, in separate batches (the second with a new message id)
    first = enricher.process(messages(failed))
    second = enricher.process(messages(failed))

    # Then one SNS message went out; the redelivery is a duplicate and a success
    assert alerted_job_ids(drain_alerts()) == [failed["detail"]["jobId"]]
    assert first.processed[0].alerted is True
    assert second.processed[0].write is WriteOutcome.DUPLICATE
    assert second.processed[0].alerted is False
    assert second.failures == {}


def test_a_failure_delivered_twice_in_one_batch_alerts_once(
    make_enricher: EnricherFactory, drain_alerts: Drain
) -> None:
    failed = read_event("job-failed-app-error")
    result = make_enricher().process(messages(failed, failed))
    assert alerted_job_ids(drain_alerts()) == [failed["detail"]["jobId"]]
    assert result.failures == {}
    assert {p.write for p in result.processed} == {WriteOutcome.FRESH, WriteOutcome.DUPLICATE}


def test_twenty_five_failures_go_out_in_three_publish_batch_calls(
    make_enricher: EnricherFactory, sns: SNSClient, drain_alerts: Drain
) -> None:
    # Given 25 distinct jobs failing in one batch
    base = read_event("job-failed-oom")
    events = [with_job_id(base, str(uuid.uuid4())) for _ in range(25)]
    batches = calls_to(sns, "sns.PublishBatch", "PublishBatchRequestEntries")
    single = calls_to(sns, "sns.Publish")

    # When it is processed
    result = make_enricher(sns=sns).process(messages(*events))

    # Then SNS got 3 PublishBatch calls of at most 10 entries and no single Publish
    assert [len(entries) for entries in batches] == [10, 10, 5]
    assert single == []
    assert result.publish_calls == 3
    # And each job alerted once
    assert sorted(alerted_job_ids(drain_alerts())) == sorted(e["detail"]["jobId"] for e in events)


def test_a_partial_publish_batch_failure_fails_only_its_records_and_a_retry_sends_them_once(
    make_enricher: EnricherFactory, sns: SNSClient, stack: LocalStack, drain_alerts: Drain
) -> None:
    # Given three failing jobs, and SNS (stubbed, validated against its model) rejecting entry 1
    base = read_event("job-failed-oom")
    events = [with_job_id(base, str(uuid.uuid4())) for _ in range(3)]
    batch = messages(*events)
    sent = calls_to(sns, "sns.PublishBatch", "PublishBatchRequestEntries")
    stubber = Stubber(sns)
    stubber.add_response(
        "publish_batch",
        {
            "Successful": [{"Id": "0", "MessageId": "m-0"}, {"Id": "2", "MessageId": "m-2"}],
            "Failed": [
                {"Id": "1", "Code": "InternalError", "Message": "try again", "SenderFault": False}
            ],
        },
        {"TopicArn": stack.topic_arn, "PublishBatchRequestEntries": ANY},
    )
    for _ in range(2):  # SNS's own fault: tried twice more in the invocation, in vain
        stubber.add_response(
            "publish_batch",
            {
                "Successful": [],
                "Failed": [
                    {
                        "Id": "1",
                        "Code": "InternalError",
                        "Message": "try again",
                        "SenderFault": False,
                    }
                ],
            },
            {"TopicArn": stack.topic_arn, "PublishBatchRequestEntries": ANY},
        )
    enricher = make_enricher(sns=sns)

    # When the batch is processed
    with stubber:
        first = enricher.process(batch)
        stubber.assert_no_pending_responses()

    # Then the rejected entry was tried again, in vain (3 tries in all, the retries carrying it
    # alone), and only its record is a failure
    assert first.publish_calls == 3
    assert [[e["Id"] for e in entries] for entries in sent] == [["0", "1", "2"], ["1"], ["1"]]
    rejected = next(e for e in sent[0] if e["Id"] == "1")
    rejected_job = json.loads(json.loads(rejected["Message"])["default"])["jobId"]
    rejected_message = next(
        m.message_id
        for m, e in zip(batch, events, strict=True)
        if e["detail"]["jobId"] == rejected_job
    )
    assert set(first.failures) == {rejected_message}
    assert "InternalError" in first.failures[rejected_message]

    # When SQS redelivers the failed record, and (for good measure) the whole batch again
    retried = enricher.process([m for m in batch if m.message_id == rejected_message])
    again = enricher.process(batch)

    # Then the rejected alert is published exactly once, and the accepted ones never again
    assert retried.failures == {}
    assert again.failures == {}
    assert alerted_job_ids(drain_alerts()) == [rejected_job]


def test_an_entry_failed_for_the_senders_fault_is_not_tried_again(
    make_enricher: EnricherFactory, sns: SNSClient, stack: LocalStack
) -> None:
    # Given a failing job, and SNS rejecting its entry for the sender's fault
    event = with_job_id(read_event("job-failed-oom"), str(uuid.uuid4()))
    stubber = Stubber(sns)
    stubber.add_response(
        "publish_batch",
        {
            "Successful": [],
            "Failed": [
                {"Id": "0", "Code": "InvalidParameter", "Message": "bad", "SenderFault": True}
            ],
        },
        {"TopicArn": stack.topic_arn, "PublishBatchRequestEntries": ANY},
    )

    # When it is processed (a second PublishBatch would find no stubbed answer)
    with stubber:
        result = make_enricher(sns=sns).process(messages(event))

    # Then its record fails after one call, for SQS to redeliver (and, in the end, the DLQ)
    (message_id,) = result.failures
    assert "InvalidParameter" in result.failures[message_id]
    assert result.publish_calls == 1


def test_an_entry_sns_neither_confirmed_nor_rejected_fails_its_record(
    make_enricher: EnricherFactory, sns: SNSClient, stack: LocalStack
) -> None:
    # Given two failing jobs, and a PublishBatch answer that names entry 0 only
    base = read_event("job-failed-oom")
    batch = messages(*(with_job_id(base, str(uuid.uuid4())) for _ in range(2)))
    stubber = Stubber(sns)
    stubber.add_response(
        "publish_batch",
        {"Successful": [{"Id": "0", "MessageId": "m-0"}], "Failed": []},
        {"TopicArn": stack.topic_arn, "PublishBatchRequestEntries": ANY},
    )

    # When the batch is processed
    with stubber:
        result = make_enricher(sns=sns).process(batch)

    # Then entry 1 is not sent again in this invocation (it may have gone out), but its record
    # is not acknowledged either: the redelivery settles it through the alert ledger
    assert result.publish_calls == 1
    assert [p.alerted for p in result.processed] == [True, False]
    assert result.failures == {batch[1].message_id: "publish: no result from SNS"}


def test_a_postponed_alert_goes_out_when_redelivered_beside_a_newer_event(
    make_enricher: EnricherFactory, history: HistoryTable, drain_alerts: Drain
) -> None:
    # Given a blocked-queue event stored, but its alert postponed (too little time left), so
    # that its record failed for SQS to redeliver
    blocked = read_event("job-queue-blocked-capacity")
    enricher = make_enricher()
    first = enricher.process([Message("blocked-1", blocked)], remaining_ms=1)
    assert set(first.failures) == {"blocked-1"}
    assert drain_alerts() == []

    # When SQS redelivers it in one batch with the job's later RUNNING event (capacity came)
    running = variant(
        blocked,
        envelope={"detail-type": "Batch Job State Change", "time": "2025-03-14T12:30:00Z"},
        status="RUNNING",
        drop=["statusReason"],
    )
    again = enricher.process(
        [Message("blocked-2", blocked), Message(str(uuid.uuid4()), running)],
        remaining_ms=60_000,
    )

    # Then the job moved on to RUNNING, the redelivery is a duplicate of what the table held,
    # and the blocked-queue alert went out once
    assert again.failures == {}
    assert again.processed[0].write is WriteOutcome.DUPLICATE
    stored = history.get_latest(blocked["detail"]["jobId"])
    assert stored is not None
    assert stored.record["status"] == "RUNNING"
    notifications = drain_alerts()
    assert alerted_job_ids(notifications) == [blocked["detail"]["jobId"]]
    assert notifications[0]["MessageAttributes"]["status"]["Value"] == "QUEUE_BLOCKED"


# --- what alerts ------------------------------------------------------------------------------


def test_each_retried_attempt_alerts_once_when_retried_attempts_alert(
    make_enricher: EnricherFactory, drain_alerts: Drain
) -> None:
    # Given a stack that alerts on retried attempts, and a job whose first attempt lost its host
    first = read_event("job-retried-runnable")
    second = with_second_attempt(first, "2025-03-14T13:40:00Z")
    enricher = make_enricher(ALERT_ON_RETRIED_ATTEMPTS="true")

    # When the RUNNABLE after attempt 1, then the RUNNABLE after attempt 2, arrive (each twice)
    results = [enricher.process(messages(event)) for event in (first, second, first, second)]

    # Then each attempt's failure alerted exactly once (the ledger keys alerts by attempt)
    assert all(result.failures == {} for result in results)
    published = [json.loads(n["Message"]) for n in drain_alerts()]
    assert sorted(len(record["attempts"]) for record in published) == [1, 2]


def test_successes_do_not_alert_by_default_but_do_when_configured(
    make_enricher: EnricherFactory, drain_alerts: Drain
) -> None:
    # Given a SUCCEEDED event
    succeeded = read_event("job-succeeded")

    # When processed under the defaults, then nothing is published
    make_enricher().process(messages(succeeded))
    assert drain_alerts() == []

    # When the same job's success is processed with ALERT_ON=SUCCEEDED,FAILED (a new job id,
    # since the success above is already the job's latest state)
    again = with_job_id(succeeded, str(uuid.uuid4()))
    make_enricher(ALERT_ON="SUCCEEDED,FAILED").process(messages(again))

    # Then it alerts
    assert alerted_job_ids(drain_alerts()) == [again["detail"]["jobId"]]


@pytest.mark.parametrize(
    "name", ["array-child-failed", "multinode-node-failed", "job-failed-dependency"]
)
def test_children_nodes_and_dependency_failures_do_not_alert_by_default(
    name: str, make_enricher: EnricherFactory, history: HistoryTable, drain_alerts: Drain
) -> None:
    # Given a failure that is not an alert on its own; when processed
    event = read_event(name)
    result = make_enricher().process(messages(event))

    # Then it is stored but not published
    assert result.failures == {}
    assert history.get_latest(event["detail"]["jobId"]) is not None
    assert drain_alerts() == []


def test_the_notification_carries_the_record_and_filter_attributes(
    make_enricher: EnricherFactory, history: HistoryTable, drain_alerts: Drain
) -> None:
    # Given a blocked queue
    event = read_event("job-queue-blocked-capacity")

    # When processed
    make_enricher().process(messages(event))

    # Then the SQS subscriber received the JobRecord JSON, equal to the stored record, with
    # every attribute a subscription filters on
    (notification,) = drain_alerts()
    stored = history.get_latest(event["detail"]["jobId"])
    assert stored is not None
    assert json.loads(notification["Message"]) == stored.record
    attributes = {k: v["Value"] for k, v in notification["MessageAttributes"].items()}
    assert attributes == {
        "alert": "true",
        "status": "QUEUE_BLOCKED",
        "category": "CAPACITY",
        "jobQueue": event["detail"]["jobQueue"].split("/")[-1],
        "jobKind": "CONTAINER",
        "eventType": "JOB_QUEUE_BLOCKED",
    }
    assert notification["Subject"].startswith("[batchlens]")


def test_a_time_without_an_offset_fails_nothing_in_its_batch(
    make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given a hand-made event whose time has no offset, at year 1, beside a real one
    odd = variant(read_event("job-succeeded"), envelope={"time": "0001-01-01T00:00:00"})
    good = read_event("job-failed-oom")

    # When one batch carries both
    result = make_enricher().process([Message("odd", odd), Message("good", good)])

    # Then nothing fails (a naive time is UTC), and both jobs are stored
    assert result.failures == {}
    assert [p.write for p in result.processed] == [WriteOutcome.FRESH, WriteOutcome.FRESH]
    assert history.get_latest(good["detail"]["jobId"]) is not None


def stored_fresh_after(enricher: Enricher, history: HistoryTable, first: Json, then: Json) -> Json:
    """`then`, processed after `first` in a batch of its own: the job's latest record, once
    checked that `then` was the newer state (FRESH)."""
    enricher.process([Message("first", first)])
    result = enricher.process([Message("then", then)])
    assert result.processed[0].write is WriteOutcome.FRESH
    stored = history.get_latest(then["detail"]["jobId"])
    assert stored is not None
    return stored.record


def test_a_record_cut_to_fit_its_item_still_counts_every_finished_attempt(
    make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given a job on its sixth attempt whose attempts carry reasons too long for one item, so
    # that its records are cut to fit (middle attempts dropped): RUNNING with five attempts
    # finished, then RUNNABLE ten minutes later, the sixth having failed too
    base = read_event("job-retried-runnable")
    attempt = base["detail"]["attempts"][0]
    attempt["container"]["reason"] = attempt["statusReason"] = "\U0001f4a5" * 9000
    strategy = {"attempts": 10, "evaluateOnExit": []}
    running, runnable = (
        variant(
            base,
            envelope={"time": f"2025-03-14T13:{minute}:00Z"},
            status=status,
            attempts=[attempt] * finished,
            retryStrategy=strategy,
        )
        for status, finished, minute in (("RUNNING", 5, 10), ("RUNNABLE", 6, 20))
    )

    # When the RUNNABLE arrives; then it is the newer state (six attempts finished, not the five
    # kept), stored and timed
    stored = stored_fresh_after(make_enricher(), history, running, runnable)
    assert stored["status"] == "RUNNABLE"
    assert stored["truncated"]
    assert [a["number"] for a in stored["attempts"]] == [1, 3, 4, 5, 6]
    assert [item["attemptsFinished"] for item in history.timeline(base["detail"]["jobId"])] == [
        5,
        6,
    ]


def test_a_queue_block_reported_in_the_second_its_job_became_runnable_is_stored(
    make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given a job's RUNNABLE event stored, and its queue-blocked event of the same second
    blocked = read_event("job-queue-blocked-misconfiguration")
    runnable = variant(
        blocked, envelope={"detail-type": "Batch Job State Change"}, drop=["statusReason"]
    )

    # When the block arrives; then it is the job's latest state, with its failure, not a
    # duplicate of the RUNNABLE
    stored = stored_fresh_after(make_enricher(), history, runnable, blocked)
    assert stored["eventType"] == "JOB_QUEUE_BLOCKED"
    assert stored["failure"]["category"] == "MISCONFIGURATION"


def test_every_sample_event_in_one_batch_is_stored(
    make_enricher: EnricherFactory, history: HistoryTable, drain_alerts: Drain
) -> None:
    # Given every sample event (unknown fields, service jobs, EKS, arrays, nodes …) in one batch
    events = [read_event(name) for name in sample_event_names()]

    # When processed
    result = make_enricher().process(messages(*events))

    # Then nothing fails, and each job's latest item is its newest sample's state
    assert result.failures == {}
    newest: dict[str, Json] = {}
    for event in events:
        job_id = event["detail"]["jobId"]
        if job_id not in newest or event["time"] > newest[job_id]["time"]:
            newest[job_id] = event
    for job_id, event in newest.items():
        stored = history.get_latest(job_id)
        assert stored is not None
        assert stored.record["eventId"] == event["id"]
        expected = "EVENT_ONLY" if "Service" in event["detail-type"] else "NOT_FOUND"
        assert stored.record["enrichment"] == expected
    # And children and nodes stayed silent while their parents alerted
    alerted = set(alerted_job_ids(drain_alerts()))
    assert read_event("array-parent-failed")["detail"]["jobId"] in alerted
    assert read_event("multinode-failed")["detail"]["jobId"] in alerted
    assert read_event("array-child-failed")["detail"]["jobId"] not in alerted
    assert read_event("multinode-node-failed")["detail"]["jobId"] not in alerted
    assert read_event("job-succeeded")["detail"]["jobId"] not in alerted
