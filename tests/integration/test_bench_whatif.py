"""The bench's what-if write (bench/whatif.py) is the design's write in another form.

`make bench` reports how fast batches would be with the latest-state write as a conditional
PutItem. That figure means something only if the variant leaves the table exactly as the
design's conditional UpdateItem does and reports the same outcomes, including for events that
arrive twice or out of order.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import boto3
import pytest

from batchlens import aws, local
from batchlens.history import LATEST_SK, WriteOutcome
from batchlens.pipeline import Enricher, Message
from bench import workload
from bench.whatif import PutItemHistory

pytestmark = pytest.mark.integration


def deliveries() -> list[list[str]]:
    """Batches of 50 with late and repeated events: a shuffled stream, then a stretch again."""
    events = workload.build(600).events
    bodies = [json.dumps(event) for event in events]
    random.Random(3).shuffle(bodies)
    bodies += bodies[100:220]
    return [bodies[start : start + 50] for start in range(0, len(bodies), 50)]


def run(session: boto3.Session, put_item: bool) -> tuple[list[Any], dict[str, Any], Counter[str]]:
    stack = local.create_stack(session)
    settings = stack.settings()
    calls: Counter[str] = Counter()
    dynamodb = aws.client("dynamodb", settings, session)
    dynamodb.meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: calls.update([event_name.split(".")[-1]])
    )
    enricher = Enricher(
        settings,
        batch=aws.client("batch", settings, session),
        dynamodb=dynamodb,
        sns=aws.client("sns", settings, session),
    )
    if put_item:
        enricher.history = PutItemHistory.instead_of(enricher.history)
    outcomes = []
    for number, bodies in enumerate(deliveries()):
        result = enricher.process(
            [Message(f"{number}-{i}", body) for i, body in enumerate(bodies)], 60_000
        )
        outcomes += [(p.message_id, p.write, p.alerted, p.error) for p in result.processed]
    scan = session.client("dynamodb").get_paginator("scan")
    latest = {
        item["pk"]["S"]: item
        for page in scan.paginate(TableName=stack.table_name)
        for item in page["Items"]
        if item["sk"]["S"] == LATEST_SK
    }
    return outcomes, latest, calls


def test_the_put_item_variant_leaves_the_same_table_and_outcomes(
    aws_session: boto3.Session,
) -> None:
    design, design_latest, design_calls = run(aws_session, put_item=False)
    variant, variant_latest, variant_calls = run(aws_session, put_item=True)

    assert variant == design
    assert variant_latest == design_latest
    # The comparison covers every outcome, and items with and without a failure category.
    writes = Counter(write for _, write, _, _ in design)
    assert {WriteOutcome.FRESH, WriteOutcome.STALE, WriteOutcome.DUPLICATE} <= set(writes)
    assert sum(1 for _, _, alerted, _ in design if alerted) > 0
    assert any("category" in item for item in design_latest.values())
    assert any("category" not in item for item in design_latest.values())
    # The variant moved the latest writes, one per job per batch, from UpdateItem to PutItem; the
    # alert ledger's writes are the same on both sides.
    moved = design_calls["UpdateItem"] - variant_calls["UpdateItem"]
    assert moved >= len(design_latest)
    assert variant_calls["PutItem"] - design_calls["PutItem"] == moved
