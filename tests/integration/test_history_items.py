"""What the history's items carry beyond the record: every item of a job expires with the stack's
retention, a job that recovers loses its failure category, and a record cut to fit leaves room
for the rest of its item (moto refuses items over DynamoDB's 400 KB, as DynamoDB does).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from batchlens import limits
from batchlens.events import parse_event
from batchlens.history import HistoryTable, UnreadableRecord, WriteOutcome, job_pk, latest_item
from batchlens.local import LocalStack
from batchlens.pipeline import Message
from batchlens.records import normalise
from tests.conftest import (
    UNEXPIRED_RETENTION_DAYS,
    EnricherFactory,
    Json,
    batch_write_unprocessed,
    read_event,
    variant,
    with_second_attempt,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

pytestmark = pytest.mark.integration

KB = 1024


def test_every_item_of_a_job_expires_with_the_retention(
    make_enricher: EnricherFactory, aws_session: boto3.Session, stack: LocalStack
) -> None:
    # Given a stack that keeps 30 days of history, and a job's RUNNING then FAILED events
    failed = read_event("job-failed-oom")
    running = variant(failed, envelope={"time": "2025-03-14T09:00:00Z"}, status="RUNNING")
    enricher = make_enricher(RETENTION_DAYS="30")

    # When both are processed
    result = enricher.process([Message(str(uuid.uuid4()), e) for e in (running, failed)])
    assert result.failures == {}

    # Then the latest item and each timeline item expire 30 days after their own event
    items = aws_session.client("dynamodb").query(
        TableName=stack.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": job_pk(failed["detail"]["jobId"])}},
    )["Items"]
    times = {p.record.event_id: p.record.event_time for p in result.processed if p.record}
    expected = {
        event_id: int((moment + timedelta(days=30)).timestamp())
        for event_id, moment in times.items()
    }
    expires = sorted(int(item["expiresAt"]["N"]) for item in items)
    assert len(items) == 3  # the latest item, and a timeline item for each transition
    assert expires == sorted([*expected.values(), expected[failed["id"]]])


def test_a_job_that_recovers_leaves_the_category_filter(
    make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given a job whose first attempt lost its host (stored RUNNABLE, HOST_TERMINATED, retried)
    retried = read_event("job-retried-runnable")
    exited = "Essential container in task exited"
    container = {**retried["detail"]["attempts"][0]["container"], "exitCode": 0}
    succeeded = with_second_attempt(
        retried,
        "2025-03-14T13:40:00Z",
        {"statusReason": exited, "container": container},
        status="SUCCEEDED",
        statusReason=exited,
    )
    second_attempt = succeeded["detail"]["attempts"][1]
    succeeded["detail"]["startedAt"] = second_attempt["startedAt"]
    succeeded["detail"]["stoppedAt"] = second_attempt["stoppedAt"]
    enricher = make_enricher(RETENTION_DAYS=str(UNEXPIRED_RETENTION_DAYS))
    (first,) = enricher.process([Message(str(uuid.uuid4()), retried)]).processed
    assert first.record is not None
    assert first.record.failure is not None
    category = first.record.failure.category.value
    day = first.record.event_time.strftime("%Y-%m-%d")

    # When its retry succeeds
    (then,) = enricher.process([Message(str(uuid.uuid4()), succeeded)]).processed
    assert then.write is WriteOutcome.FRESH
    assert then.record is not None
    assert then.record.failure is None

    # Then the day's successes list it, but not filtered by that category (what `batchlens jobs
    # --status SUCCEEDED --category …` asks): its latest item lost the category
    successes: dict[str, AttributeValueTypeDef] = {":pk": {"S": f"D#{day}#SUCCEEDED"}}
    listed = history.query_latest("byDay", "gsi2pk = :pk", successes)
    assert [item["record"]["status"] for item in listed] == ["SUCCEEDED"]
    filtered = history.query_latest(
        "byDay",
        "gsi2pk = :pk",
        {**successes, ":c0": {"S": category}},
        names={"#category": "category"},
        filter_expression="#category IN (:c0)",
    )
    assert list(filtered) == []


@pytest.mark.parametrize("size", [395 * KB, 409_000, limits.DYNAMODB_ITEM_MAX_BYTES])
def test_a_record_just_under_400_kb_is_cut_so_that_its_whole_item_is_written(
    history: HistoryTable, size: int
) -> None:
    # Given a failed job whose record JSON alone is just under DynamoDB's item limit
    base = normalise(parse_event(read_event("job-failed-oom")))
    pad = size - limits.record_bytes(base.model_copy(update={"status_reason": ""}))
    record = base.model_copy(update={"status_reason": "p" * pad})
    assert limits.record_bytes(record) == size

    # When it is fitted for the history and written
    outcome, _ = history.put_latest(limits.fit_for_store(record))

    # Then the whole item (record, keys, index keys, version, TTL) was accepted
    assert outcome is WriteOutcome.FRESH
    stored = history.get_latest(record.job_id)
    assert stored is not None
    assert stored.record["status"] == "FAILED"


def test_timeline_items_left_unprocessed_are_written_on_a_retry(
    aws_session: boto3.Session, stack: LocalStack
) -> None:
    # Given DynamoDB leaving every item of the first BatchWriteItem unprocessed (throttled)
    client = aws_session.client("dynamodb")
    throttled: list[int] = []

    def unprocessed_once(params: dict[str, Any], **_: Any) -> tuple[Any, Json] | None:
        if throttled:
            return None
        throttled.append(len(json.loads(params["body"])["RequestItems"][stack.table_name]))
        return batch_write_unprocessed(params)

    hook: Callable[..., Any] = unprocessed_once
    client.meta.events.register("before-call.dynamodb.BatchWriteItem", hook)
    history = HistoryTable(client, stack.table_name, UNEXPIRED_RETENTION_DAYS)
    failed = normalise(parse_event(read_event("job-failed-oom")))

    # When a job's transition is written
    unwritten = history.put_transitions([failed])

    # Then it was asked for again and is in the timeline: nothing is left unwritten
    assert (throttled, unwritten) == ([1], [])
    assert [item["status"] for item in history.timeline(failed.job_id)] == ["FAILED"]


def test_timeline_items_held_back_every_time_wait_between_attempts_only(
    aws_session: boto3.Session, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB leaving every item of every BatchWriteItem unprocessed (throttled)
    client = aws_session.client("dynamodb")
    hook: Callable[..., Any] = batch_write_unprocessed
    client.meta.events.register("before-call.dynamodb.BatchWriteItem", hook)
    waits: list[float] = []
    monkeypatch.setattr("batchlens.history.time.sleep", waits.append)
    history = HistoryTable(client, stack.table_name, UNEXPIRED_RETENTION_DAYS)
    failed = normalise(parse_event(read_event("job-failed-oom")))

    # When a job's transition is written, then it is returned unwritten after 5 attempts, having
    # waited only between them (50 ms, doubling), not after the last
    assert history.put_transitions([failed]) == [failed]
    assert waits == [0.05, 0.1, 0.2, 0.4]


def test_a_timeline_item_keeps_2000_characters_of_the_status_reason(
    aws_session: boto3.Session, stack: LocalStack
) -> None:
    # Given a queue-blocked job whose status reason is long, and one whose reason is far longer
    history = HistoryTable(
        aws_session.client("dynamodb"), stack.table_name, UNEXPIRED_RETENTION_DAYS
    )
    blocked = normalise(parse_event(read_event("job-queue-blocked-capacity")))
    assert blocked.status_reason is not None
    reason = "CAPACITY:" + "x" * 3000
    longer = blocked.model_copy(update={"job_id": "long-reason", "status_reason": reason})

    # When their transitions are written
    assert history.put_transitions([blocked, longer]) == []

    # Then the first keeps its reason whole, the second its first 2,000 characters
    (whole,) = history.timeline(blocked.job_id)
    assert whole["statusReason"] == blocked.status_reason
    (cut,) = history.timeline("long-reason")
    assert cut["statusReason"] == reason[:2000]


def test_a_timeline_item_that_cannot_be_built_fails_its_record_alone(
    aws_session: boto3.Session, stack: LocalStack
) -> None:
    from datetime import datetime, timezone

    # Given a chunk of transitions, one of them timed before year 1 once moved to UTC (the parser
    # refuses such events; this stands for any item that cannot be built)
    history = HistoryTable(
        aws_session.client("dynamodb"), stack.table_name, UNEXPIRED_RETENTION_DAYS
    )
    good = normalise(parse_event(read_event("job-failed-oom")))
    other = normalise(parse_event(variant(read_event("job-succeeded"), jobId="other-job")))
    before_utc = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    bad = good.model_copy(update={"job_id": "bad-job", "event_time": before_utc})

    # When they are written together
    unwritten = history.put_transitions([good, bad, other])

    # Then only that one is unwritten; the others are in their timelines
    assert [record.job_id for record in unwritten] == ["bad-job"]
    assert [item["status"] for item in history.timeline(good.job_id)] == ["FAILED"]
    assert [item["status"] for item in history.timeline("other-job")] == ["SUCCEEDED"]


@pytest.mark.parametrize("damaged", ["version", "record"])
def test_a_latest_item_missing_its_version_or_record_is_named_as_unreadable(
    history: HistoryTable, damaged: str
) -> None:
    # Given a job's latest item stored without its version (or its record), as an item edited by
    # hand or written by another tool would be
    record = normalise(parse_event(read_event("job-failed-oom")))
    item = latest_item(record, UNEXPIRED_RETENTION_DAYS)
    del item[damaged]
    client: Any = history._client
    client.put_item(TableName=history.table_name, Item=item)

    # When it is read back, then the error names the job and why, not a bare KeyError
    with pytest.raises(UnreadableRecord, match=f"job '{record.job_id}': .* not a JobRecord"):
        history.get_latest(record.job_id)
