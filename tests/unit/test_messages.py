"""`Message.from_sqs`: a record of Lambda's SQS event, with SQS's receive count."""

from __future__ import annotations

import pytest

from batchlens.pipeline import Message


@pytest.mark.parametrize(
    ("attributes", "count"),
    [
        ({"ApproximateReceiveCount": "3"}, 3),
        ({}, 1),
        ({"ApproximateReceiveCount": "x"}, 1),
        ({"ApproximateReceiveCount": "²"}, 1),
        ({"ApproximateReceiveCount": 2}, 1),
    ],
    ids=["counted", "absent", "not a number", "a digit int() refuses", "not a string"],
)
def test_a_records_receive_count_is_read_or_taken_as_the_first(
    attributes: dict[str, object], count: int
) -> None:
    # Given an SQS record as Lambda delivers it; when read, then its count is SQS's, or 1 where
    # SQS's is missing or unreadable (a first receive is what the pipeline assumed before)
    record = {"messageId": "m1", "body": "{}", "attributes": attributes}
    assert Message.from_sqs(record) == Message("m1", "{}", count)
