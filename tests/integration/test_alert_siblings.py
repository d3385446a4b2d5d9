"""An alert is never lost because a job's older events shared a batch with its newest.

When the first delivery stores the newest event but cannot finish (alerts postponed for lack of
time, the timeline throttled, the write's answer lost and retried by botocore), the table already
holds the batch's newest version when the batch comes again. The older events of that job in the
batch are then redelivered transitions, not stale ones: the alert they waited for goes out, once.
Found by a review; each test failed before the fix.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from batchlens import aws
from batchlens.history import HistoryTable, WriteOutcome
from batchlens.local import LocalStack
from batchlens.pipeline import Message
from tests.chaos.faults import http_response
from tests.conftest import EnricherFactory, Json, batch_write_unprocessed, read_event, variant

pytestmark = pytest.mark.integration

Drain = Callable[[], list[Json]]


def msgs(*events: Json) -> list[Message]:
    return [Message(str(uuid.uuid4()), e) for e in events]


def redelivered(batch: list[Message], failures: dict[str, str]) -> list[Message]:
    """What SQS sends again after a partial batch response: the failed messages only, each on
    its next receive."""
    return [
        dataclasses.replace(m, receive_count=m.receive_count + 1)
        for m in batch
        if m.message_id in failures
    ]


def statuses(notifications: list[Json]) -> list[str]:
    return sorted(n["MessageAttributes"]["status"]["Value"] for n in notifications)


# Same job: blocked in its queue at 14:15, cancelled by the queue's JobStateTimeLimit at 18:15.
def blocked_then_cancelled() -> tuple[Json, Json]:
    blocked = read_event("job-queue-blocked-capacity")
    cancelled = read_event("job-cancelled-state-time-limit")
    assert blocked["detail"]["jobId"] == cancelled["detail"]["jobId"]
    return blocked, cancelled


def test_a_sibling_alert_postponed_in_one_batch_goes_out_on_redelivery(
    make_enricher: EnricherFactory, drain_alerts: Drain
) -> None:
    blocked, cancelled = blocked_then_cancelled()
    enricher = make_enricher()
    batch = [Message("b", blocked), Message("c", cancelled)]
    # Both stored (FAILED is the newest) but alerts postponed: too little time left.
    first = enricher.process(batch, remaining_ms=1)
    assert set(first.failures) == {"b", "c"}
    assert drain_alerts() == []
    # SQS redelivers the same two messages with time to spare.
    again = enricher.process(redelivered(batch, first.failures), remaining_ms=60_000)
    assert again.failures == {}
    # Both transitions alert (ALERT_ON=FAILED,QUEUE_BLOCKED): a blocked queue and the cancel.
    assert statuses(drain_alerts()) == ["FAILED", "QUEUE_BLOCKED"]


def test_a_sibling_alert_deferred_by_a_throttled_timeline_goes_out_on_redelivery(
    aws_session: boto3.Session,
    stack: LocalStack,
    make_enricher: EnricherFactory,
    drain_alerts: Drain,
) -> None:
    blocked, cancelled = blocked_then_cancelled()
    dynamodb = aws.client("dynamodb", stack.settings(), aws_session)
    hook: Callable[..., Any] = batch_write_unprocessed
    dynamodb.meta.events.register("before-call.dynamodb.BatchWriteItem", hook)
    enricher = make_enricher(dynamodb=dynamodb)
    batch = msgs(blocked, cancelled)
    first = enricher.process(batch)
    assert len(first.failures) == 2  # timeline throttled: both redelivered, alerts wait
    assert drain_alerts() == []
    dynamodb.meta.events.unregister("before-call.dynamodb.BatchWriteItem", hook)
    again = enricher.process(redelivered(batch, first.failures))
    assert again.failures == {}
    assert statuses(drain_alerts()) == ["FAILED", "QUEUE_BLOCKED"]


def test_a_late_event_beside_a_redelivered_newest_stays_stale_and_silent(
    make_enricher: EnricherFactory, drain_alerts: Drain
) -> None:
    # Given a job that failed, its alert sent, and its FAILED message redelivered (a lost
    # acknowledgement) in the same batch as the job's queue-blocked event, arriving late for the
    # first time
    blocked, cancelled = blocked_then_cancelled()
    enricher = make_enricher()
    batch = [Message("c", cancelled)]
    assert enricher.process(batch).failures == {}
    assert statuses(drain_alerts()) == ["FAILED"]

    # When they are processed together
    late = Message("b", blocked)
    (again,) = redelivered(batch, {"c": "acknowledgement lost"})
    result = enricher.process([late, again])

    # Then the late event is stale, as alone, and sends no queue-blocked alert for a job that
    # has already failed
    assert result.failures == {}
    assert [p.write for p in result.processed] == [WriteOutcome.STALE, WriteOutcome.DUPLICATE]
    assert drain_alerts() == []


def test_in_order_control_both_alert_in_one_batch(
    make_enricher: EnricherFactory, drain_alerts: Drain
) -> None:
    blocked, cancelled = blocked_then_cancelled()
    result = make_enricher().process(msgs(blocked, cancelled))
    assert result.failures == {}
    assert statuses(drain_alerts()) == ["FAILED", "QUEUE_BLOCKED"]


def _lose_first_answer() -> Callable[..., Any]:
    """A before-send hook: the UpdateItem reaches moto, which applies it, but its first answer is
    a 500, as when DynamoDB applied a write and the response was lost; botocore retries it."""
    seen: list[int] = []
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"lost"}'

    def hook(request: Any, **_: Any) -> Any:
        seen.append(1)
        return http_response(request, 500, body, {}) if len(seen) == 1 else None

    return hook


def test_a_lost_update_answer_keeps_the_siblings_alert(
    aws_session: boto3.Session,
    stack: LocalStack,
    make_enricher: EnricherFactory,
    history: HistoryTable,
    drain_alerts: Drain,
    no_retry_delay: list[float],
) -> None:
    blocked, cancelled = blocked_then_cancelled()
    dynamodb = aws.client("dynamodb", stack.settings(), aws_session)
    dynamodb.meta.events.register("before-send.dynamodb.UpdateItem", _lose_first_answer())
    result = make_enricher(dynamodb=dynamodb).process(msgs(blocked, cancelled))
    assert result.failures == {}
    assert no_retry_delay, "the UpdateItem was retried after its lost answer"
    assert [p.write for p in result.processed] == [WriteOutcome.DUPLICATE, WriteOutcome.DUPLICATE]
    stored = history.get_latest(cancelled["detail"]["jobId"])
    assert stored is not None
    assert stored.record["status"] == "FAILED"
    assert statuses(drain_alerts()) == ["FAILED", "QUEUE_BLOCKED"]


def test_both_copies_of_an_event_wait_for_an_unwritten_timeline_item(
    aws_session: boto3.Session,
    stack: LocalStack,
    make_enricher: EnricherFactory,
    drain_alerts: Drain,
) -> None:
    # The same FAILED event delivered twice in one batch (two SQS messages), timeline throttled.
    dynamodb = aws.client("dynamodb", stack.settings(), aws_session)
    hook: Callable[..., Any] = batch_write_unprocessed
    dynamodb.meta.events.register("before-call.dynamodb.BatchWriteItem", hook)
    failed = read_event("job-failed-app-error")
    batch = msgs(failed, failed)
    result = make_enricher(dynamodb=dynamodb).process(batch)
    # Then neither copy's timeline item was written, so both wait for the redelivery, and so
    # does the alert (only the second copy was reported failed before the fix, and the first
    # alerted at once)
    assert set(result.failures) == {m.message_id for m in batch}
    assert drain_alerts() == []


def test_a_postponed_retried_attempt_alert_survives_sqs_redelivering_only_failed_records(
    make_enricher: EnricherFactory, drain_alerts: Drain
) -> None:
    # ALERT_ON_RETRIED_ATTEMPTS=true; attempt 1 lost its host (RUNNABLE again), attempt 2 RUNNING.
    retried = read_event("job-retried-runnable")
    running2 = variant(retried, envelope={"time": "2025-03-14T13:25:00Z"}, status="RUNNING")
    enricher = make_enricher(ALERT_ON_RETRIED_ATTEMPTS="true")
    batch = msgs(retried, running2)
    first = enricher.process(batch, remaining_ms=1)  # both stored, the alert postponed
    assert drain_alerts() == []
    # Before the fix only the RUNNABLE was reported failed: the RUNNING was acknowledged, and
    # the RUNNABLE, redelivered alone, lost to the stored RUNNING as stale and never alerted.
    again = enricher.process(redelivered(batch, first.failures), remaining_ms=60_000)
    assert again.failures == {}
    assert statuses(drain_alerts()) == ["RUNNABLE"]


def test_an_older_siblings_alert_kept_for_a_throttled_timeline_survives_redelivery(
    aws_session: boto3.Session,
    stack: LocalStack,
    make_enricher: EnricherFactory,
    drain_alerts: Drain,
) -> None:
    retried = read_event("job-retried-runnable")
    running2 = variant(retried, envelope={"time": "2025-03-14T13:25:00Z"}, status="RUNNING")
    retried_sk = "#RUNNABLE#" + retried["id"]
    held: list[Json] = []

    def hold_retried(params: Json, **_: Any) -> None:
        # Only the RUNNABLE's timeline item is held back, as DynamoDB does with UnprocessedItems;
        # the RUNNING's is written. A request of held items only is answered by `all_held`.
        for table, requests in params["RequestItems"].items():
            held[:] = [r for r in requests if retried_sk in r["PutRequest"]["Item"]["sk"]["S"]]
            if len(held) < len(requests):
                params["RequestItems"][table] = [r for r in requests if r not in held]

    def all_held(params: Json, **kwargs: Any) -> Any:
        (requests,) = json.loads(params["body"])["RequestItems"].values()
        if all(retried_sk in r["PutRequest"]["Item"]["sk"]["S"] for r in requests):
            return batch_write_unprocessed(params, **kwargs)
        return None

    def report_held(parsed: Json, **_: Any) -> None:
        if held:
            parsed.setdefault("UnprocessedItems", {})[stack.table_name] = list(held)

    hooks: list[tuple[str, Callable[..., Any]]] = [
        ("before-parameter-build.dynamodb.BatchWriteItem", hold_retried),
        ("before-call.dynamodb.BatchWriteItem", all_held),
        ("after-call.dynamodb.BatchWriteItem", report_held),
    ]
    dynamodb = aws.client("dynamodb", stack.settings(), aws_session)
    for name, hook in hooks:
        dynamodb.meta.events.register(name, hook)
    enricher = make_enricher(dynamodb=dynamodb, ALERT_ON_RETRIED_ATTEMPTS="true")
    batch = [Message("retried", retried), Message("running2", running2)]
    first = enricher.process(batch)
    assert "retried" in first.failures
    assert drain_alerts() == []
    for name, hook in hooks:
        dynamodb.meta.events.unregister(name, hook)
    again = enricher.process(redelivered(batch, first.failures))
    assert again.failures == {}
    assert statuses(drain_alerts()) == ["RUNNABLE"]
