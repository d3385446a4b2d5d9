"""Records that pass the parser but whose latest item DynamoDB would refuse: a huge array index, a
roll-up that grows a parent past 400 KB, and the cheap size bound missing a field."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchlens import limits, local
from batchlens.events import InvalidEvent, parse_event
from batchlens.history import latest_item
from batchlens.pipeline import Enricher, Message
from batchlens.records import normalise
from tests.conftest import array_child_event, read_event

PARENT: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "events" / "array-parent-failed.json").read_text()
)
GSI_SORT_KEY_MAX = 1024  # DynamoDB: a (GSI) sort key value is at most 1,024 bytes


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Enricher, local.LocalStack, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        created = local.create_stack(session)
        enricher = Enricher(
            created.settings(),
            batch=session.client("batch"),
            dynamodb=session.client("dynamodb"),
            sns=session.client("sns"),
        )
        yield enricher, created, session


def test_a_huge_array_index_is_poison_not_a_gsi4sk_dynamodb_refuses(aws: Any) -> None:
    # Given an array child whose arrayProperties.index has 1,100 digits (a 1.3 KB event)
    _, created, session = aws
    event = array_child_event("7e5f376f-6a34-459d-a1e0-46a88061cd91", 7, failed=True)
    event["detail"]["arrayProperties"] = {"index": 10**1100}

    # When it is parsed, normalised and fitted for the history
    try:
        record = limits.fit_for_store(normalise(parse_event(json.dumps(event))))
    except InvalidEvent:
        return  # refused up front as poison: never retried

    # Then its latest item must be one DynamoDB accepts: byParent's sort key within 1,024 bytes
    # (moto's UpdateItem does not check GSI key sizes; its PutItem does, as DynamoDB does both)
    item = latest_item(record, 90)
    session.client("dynamodb").put_item(TableName=created.table_name, Item=item)
    assert len(item["gsi4sk"]["S"].encode()) <= GSI_SORT_KEY_MAX


def test_a_rolled_up_parent_still_fits_a_dynamodb_item(aws: Any) -> None:
    # Given a failed array child in the history, and its parent's FAILED event (240 KB, under
    # EventBridge's and SQS's 256 KiB) whose statusSummary carries 8,000 keys besides Batch's
    enricher, created, session = aws
    parent_id = PARENT["detail"]["jobId"]
    child = array_child_event(parent_id, 3, failed=True)
    assert enricher.process([Message(str(uuid.uuid4()), json.dumps(child))]).failures == {}
    parent = copy.deepcopy(PARENT)
    summary = parent["detail"]["arrayProperties"]["statusSummary"]
    summary.update({f"X{n:05d}" + "k" * 18: 1 for n in range(8_000)})
    body = json.dumps(parent, separators=(",", ":"))
    assert len(body.encode()) < 256 * 1024
    assert limits.fit_for_store(normalise(parse_event(body))).truncated is False  # fits alone

    # When the enricher processes it (the roll-up repeats the summary in failure.detail)
    result = enricher.process([Message(str(uuid.uuid4()), body)])

    # Then the parent's final state is stored, not failed (and redelivered until the DLQ)
    assert result.failures == {}
    stored = session.client("dynamodb").get_item(
        TableName=created.table_name,
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
