"""Fuzzing the parser and the normaliser with hypothesis: whatever arrives, `parse_event` either
returns an event or raises `InvalidEvent` (never anything else), and whatever it accepts,
`normalise` turns into a record that serialises, orders, alerts and fits the size limits.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchlens import limits
from batchlens.alerts import build_alert
from batchlens.events import BatchEvent, InvalidEvent, parse_event
from batchlens.history import index_keys, version_of
from batchlens.records import JobRecord, normalise
from tests.conftest import read_event, sample_event_names

FUZZ = settings(
    max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

SAMPLES = [read_event(name) for name in sample_event_names()]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", "inf", "nan", "-1", "1e400", "FAILED", "arn:aws:batch:::", "#", ":"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A sample event with a few values anywhere in it replaced by junk, or removed."""
    event = copy.deepcopy(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(event)
        path = draw(st.sampled_from(paths))
        parent = event
        for part in path[:-1]:
            parent = parent[part]
        if isinstance(parent, dict) and draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values)
    return event


def check_record(record: JobRecord) -> None:
    """Everything the pipeline does with a record after normalising it."""
    text = json.dumps(record.to_json_dict())
    assert json.loads(text)["jobId"] == record.job_id
    version_of(record)
    index_keys(record)
    stored = limits.fit_for_store(record)
    assert limits.record_bytes(stored) <= limits.RECORD_MAX_BYTES
    alert = limits.fit_alert(stored, build_alert)
    assert limits.sns_message_bytes(alert.message, alert.subject, alert.attributes) <= (
        limits.SNS_MESSAGE_MAX_BYTES
    )


def parse_or_refuse(payload: Any) -> BatchEvent | None:
    try:
        return parse_event(payload)
    except InvalidEvent as exc:
        reason = str(exc)
    assert reason  # a reason a person can act on
    return None


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_parse_refuses_any_text_with_invalid_event_only(payload: str | bytes) -> None:
    parse_or_refuse(payload)


@FUZZ
@given(json_values)
def test_parse_refuses_any_json_value_with_invalid_event_only(value: Any) -> None:
    parse_or_refuse(value)
    parse_or_refuse(json.dumps(value))


@FUZZ
@given(mutated_events())
def test_whatever_parse_accepts_normalise_turns_into_a_usable_record(event: dict[str, Any]) -> None:
    # Given an event with junk in it; when parse accepts it
    parsed = parse_or_refuse(event)
    if parsed is None:
        return
    # Then normalise never raises, alone or with the event's own detail as the description
    check_record(normalise(parsed))
    check_record(normalise(parsed, parsed.detail))


@FUZZ
@given(st.sampled_from(SAMPLES), st.sampled_from(["detail", "envelope"]), json_values)
def test_any_value_under_any_top_level_key_is_refused_or_accepted_cleanly(
    sample: dict[str, Any], where: str, value: Any
) -> None:
    event = copy.deepcopy(sample)
    if where == "detail":
        event["detail"] = value
    else:
        event[str(value)[:20]] = value
        event["time"] = value
    parsed = parse_or_refuse(event)
    if parsed is not None:
        check_record(normalise(parsed))


@pytest.mark.parametrize("depth", [100, 5_000, 100_000])
def test_deeply_nested_json_is_refused_not_crashed(depth: int) -> None:
    # Given JSON nested deeper than the decoder's recursion limit
    body = "[" * depth + "]" * depth
    wrapped = '{"detail": ' + body + "}"

    # When it is parsed, then it is refused with a reason (or parsed and refused as no event)
    for payload in (body, wrapped):
        with pytest.raises(InvalidEvent):
            parse_event(payload)


#: Strings that parse as numbers badly, or not at all, or are very long.
TRICKY = ("inf", "-inf", "nan", "1e400", "-1", "", "0x10", "9" * 5_000, "\u0000\ud7ff\U0001f600")


@pytest.mark.parametrize("name", sample_event_names())
def test_every_string_in_a_sample_may_be_any_tricky_string(name: str) -> None:
    # Given one sample; when each of its string values in turn is replaced by each tricky string
    sample = read_event(name)
    for path in _paths(sample):
        parent: Any = sample
        for part in path[:-1]:
            parent = parent[part]
        if not isinstance(parent[path[-1]], str):
            continue
        for tricky in TRICKY:
            event = copy.deepcopy(sample)
            target: Any = event
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = tricky
            # Then parse accepts or refuses it, and what it accepts normalises into a usable record
            parsed = parse_or_refuse(event)
            if parsed is not None:
                check_record(normalise(parsed))


@pytest.mark.parametrize(
    ("where", "field", "value"),
    [
        ("envelope", "id", "e" * 201),
        ("detail", "jobId", "j" * 201),
        ("detail", "jobName", "ü" * 201),  # 402 bytes of UTF-8
        ("detail", "jobQueue", "q" * 1001),
        ("detail", "status", "S" * 65),
    ],
)
def test_values_too_long_for_the_history_keys_are_refused_by_name(
    where: str, field: str, value: str
) -> None:
    # Given an event whose id, job id, name, queue or status would overflow a DynamoDB key
    event = read_event("job-failed-oom")
    (event if where == "envelope" else event["detail"])[field] = value

    # When it is parsed, then it is refused, naming the field
    with pytest.raises(InvalidEvent, match=field):
        parse_event(event)
    # And one byte less is accepted
    (event if where == "envelope" else event["detail"])[field] = value[:-1]
    parse_event(event)
