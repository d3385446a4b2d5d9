"""Records whose latest item DynamoDB would refuse: a huge array index (now poison), a roll-up
that grows a parent past 400 KB, and the cheap size bound missing a field."""

from __future__ import annotations

import copy
import json
import uuid

import boto3
import pytest

from batchlens import limits
from batchlens.events import InvalidEvent, parse_event
from batchlens.history import latest_item
from batchlens.local import LocalStack
from batchlens.pipeline import Message
from batchlens.records import normalise
from tests.conftest import EnricherFactory, array_child_event, read_event

pytestmark = pytest.mark.integration


def test_a_huge_array_index_is_poison_not_a_gsi4sk_dynamodb_refuses() -> None:
    # Given an array child whose arrayProperties.index has 1,100 digits (a 1.3 KB event): its
    # byParent sort key would pass DynamoDB's 1,024 bytes, and every store would fail
    event = array_child_event("7e5f376f-6a34-459d-a1e0-46a88061cd91", 7, failed=True)
    event["detail"]["arrayProperties"] = {"index": 10**1100}

    # When it is parsed, then it is refused up front as poison, never retried
    with pytest.raises(InvalidEvent, match=r"arrayProperties\.index has more than 18 digits"):
        parse_event(json.dumps(event))


def test_an_array_index_of_18_digits_makes_a_key_dynamodb_accepts(
    aws_session: boto3.Session, stack: LocalStack
) -> None:
    # Given the largest index the parser lets through
    event = array_child_event("7e5f376f-6a34-459d-a1e0-46a88061cd91", 7, failed=True)
    event["detail"]["arrayProperties"] = {"index": 10**18 - 1}

    # When its latest item is written (moto's PutItem checks GSI key sizes, as DynamoDB does)
    item = latest_item(limits.fit_for_store(normalise(parse_event(json.dumps(event)))), 90)
    aws_session.client("dynamodb").put_item(TableName=stack.table_name, Item=item)

    # Then byParent's sort key is well within 1,024 bytes
    assert len(item["gsi4sk"]["S"].encode()) <= 1024


def test_a_rolled_up_parent_still_fits_a_dynamodb_item(
    aws_session: boto3.Session, stack: LocalStack, make_enricher: EnricherFactory
) -> None:
    # Given a failed array child in the history, and its parent's FAILED event (240 KB, under
    # EventBridge's and SQS's 256 KiB) whose statusSummary carries 8,000 keys besides Batch's
    enricher = make_enricher()
    parent_event = read_event("array-parent-failed")
    parent_id = parent_event["detail"]["jobId"]
    child = array_child_event(parent_id, 3, failed=True)
    assert enricher.process([Message(str(uuid.uuid4()), json.dumps(child))]).failures == {}
    parent = copy.deepcopy(parent_event)
    summary = parent["detail"]["arrayProperties"]["statusSummary"]
    summary.update({f"X{n:05d}" + "k" * 18: 1 for n in range(8_000)})
    body = json.dumps(parent, separators=(",", ":"))
    assert len(body.encode()) < 256 * 1024
    assert limits.fit_for_store(normalise(parse_event(body))).truncated is False  # fits alone

    # When the enricher processes it (the roll-up repeats the summary in failure.detail)
    result = enricher.process([Message(str(uuid.uuid4()), body)])

    # Then the parent's final state is stored, not failed (and redelivered until the DLQ)
    assert result.failures == {}
    stored = aws_session.client("dynamodb").get_item(
        TableName=stack.table_name,
        Key={"pk": {"S": f"JOB#{parent_id}"}, "sk": {"S": "LATEST"}},
    )["Item"]
    assert json.loads(stored["record"]["S"])["status"] == "FAILED"


def test_the_cheap_bound_counts_the_region() -> None:
    # Given a record whose envelope region is 400 KB (its jobArn names the real region)
    event = read_event("job-failed-oom")
    event["region"] = "x" * 400_000
    record = normalise(parse_event(event))
    assert limits.record_bytes(record) > limits.RECORD_MAX_BYTES

    # When it is fitted for the history, then it is cut to fit (and says so)
    stored = limits.fit_for_store(record)
    assert stored.truncated
    assert limits.record_bytes(stored) <= limits.RECORD_MAX_BYTES
    assert limits.fits_dynamodb(latest_item(stored, 90))
