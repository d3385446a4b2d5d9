"""The latest item's version orders job states: terminal, then finished attempts, then the
status's place in the lifecycle, then event time, then a queue-blocked event over a state change.
DynamoDB compares it as a string, so string order must be exactly that order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchlens.events import EventType, parse_event
from batchlens.history import index_keys, version_of
from batchlens.records import JobRecord, normalise
from tests.conftest import read_event, variant

# AWS Batch's job lifecycle (User Guide, "Job states"); both terminal states rank the same.
LIFECYCLE = ["SUBMITTED", "PENDING", "RUNNABLE", "SCHEDULED", "STARTING", "RUNNING"]
TERMINAL = ["SUCCEEDED", "FAILED"]
BASE = normalise(parse_event(read_event("job-failed-oom")))
T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def state(status: str, attempts: int, at: datetime, *, blocked: bool = False) -> JobRecord:
    """The OOM job's record, moved to another status, number of finished attempts and time (and
    made a queue-blocked event when `blocked`)."""
    finished = [BASE.attempts[0].model_copy(update={"number": n + 1}) for n in range(attempts)]
    return BASE.model_copy(
        update={
            "status": status,
            "is_terminal": status in TERMINAL,
            "attempts": finished,
            "event_time": at,
            "event_type": EventType.JOB_QUEUE_BLOCKED if blocked else EventType.JOB_STATE_CHANGE,
        }
    )


def expected_order(record: JobRecord) -> tuple[bool, int, int, datetime, bool]:
    rank = len(LIFECYCLE) if record.status in TERMINAL else LIFECYCLE.index(record.status)
    blocked = record.event_type is EventType.JOB_QUEUE_BLOCKED
    return (record.is_terminal, len(record.attempts), rank, record.event_time, blocked)


def sign(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


states = st.builds(
    state,
    status=st.sampled_from(LIFECYCLE + TERMINAL),
    attempts=st.integers(min_value=0, max_value=12),
    at=st.datetimes(
        min_value=datetime(2020, 1, 1),
        max_value=datetime(2035, 1, 1),
        timezones=st.just(UTC),
    ).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000)),
    blocked=st.booleans(),
)


@given(states, states)
def test_version_string_order_is_the_job_state_order(a: JobRecord, b: JobRecord) -> None:
    # Given any two states of one job; when their versions are compared as DynamoDB does
    # Then the string order is (terminal, attempts, lifecycle rank, time) order
    assert sign(version_of(a), version_of(b)) == sign(expected_order(a), expected_order(b))


@given(states)
def test_versions_have_one_fixed_width(record: JobRecord) -> None:
    # Fixed width is what makes string comparison numeric comparison
    assert len(version_of(record)) == len(version_of(BASE))


def test_a_terminal_state_beats_any_later_non_terminal_event() -> None:
    # Given a FAILED job and a RUNNING event stamped a day later with more attempts
    failed = state("FAILED", 1, T0)
    running_later = state("RUNNING", 3, T0 + timedelta(days=1))

    # Then FAILED stays the newest state
    assert version_of(failed) > version_of(running_later)


def test_more_finished_attempts_beat_a_later_status_of_an_earlier_attempt() -> None:
    # Given RUNNABLE after attempt 1 failed (retry), and RUNNING of attempt 1 delivered late
    retrying = state("RUNNABLE", 1, T0)
    first_run = state("RUNNING", 0, T0 + timedelta(minutes=5))

    # Then the retry is newer, though RUNNING ranks above RUNNABLE and its time is later
    assert version_of(retrying) > version_of(first_run)


def test_lifecycle_rank_decides_within_one_attempt_whatever_the_clock() -> None:
    # Given RUNNING and RUNNABLE of the same attempt, RUNNING stamped earlier (clock skew)
    running = state("RUNNING", 0, T0)
    runnable = state("RUNNABLE", 0, T0 + timedelta(seconds=30))

    # Then RUNNING is newer
    assert version_of(running) > version_of(runnable)


def test_event_time_breaks_ties_to_the_millisecond() -> None:
    earlier = state("RUNNING", 1, T0)
    later = state("RUNNING", 1, T0 + timedelta(milliseconds=1))
    assert version_of(later) > version_of(earlier)


def test_a_queue_blocked_event_beats_the_runnable_of_the_same_second() -> None:
    # EventBridge's times have whole seconds, and Batch reports a block of a RUNNABLE job
    runnable = state("RUNNABLE", 0, T0)
    blocked = state("RUNNABLE", 0, T0, blocked=True)
    assert version_of(blocked) > version_of(runnable)
    # But not a later state: the job moving on ends the block
    assert version_of(state("RUNNABLE", 0, T0 + timedelta(seconds=1))) > version_of(blocked)
    assert version_of(state("STARTING", 0, T0)) > version_of(blocked)


def test_a_redelivered_event_has_the_same_version() -> None:
    # Given one event parsed twice (two deliveries, two envelopes with the same content)
    event = read_event("job-failed-oom")
    again = variant(event, envelope={"id": event["id"]})

    # Then both have one version: the second write is a duplicate, not newer
    assert version_of(normalise(parse_event(event))) == version_of(normalise(parse_event(again)))


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("job-runnable", "job-running"),
        ("job-running", "job-succeeded"),
        ("job-runnable", "job-succeeded"),
        ("job-queue-blocked-capacity", "job-cancelled-state-time-limit"),
    ],
)
def test_sample_lifecycles_are_ordered(older: str, newer: str) -> None:
    # Given two samples of one job in lifecycle order; then their versions are in that order
    first = normalise(parse_event(read_event(older)))
    second = normalise(parse_event(read_event(newer)))
    assert first.job_id == second.job_id
    assert version_of(first) < version_of(second)


def test_a_node_index_int_cannot_read_is_no_index_and_never_fails_the_record() -> None:
    # Given a multi-node node without `nodeDetails`, whose id ends in a digit str.isdigit()
    # accepts but int() refuses (a superscript two)
    tail = "\u00b2"
    node = read_event("multinode-node-failed")
    parent_id = node["detail"]["jobId"].rsplit("#", 1)[0]
    record = normalise(
        parse_event(variant(node, jobId=f"{parent_id}#{tail}", drop=["nodeDetails"]))
    )
    assert record.parent_job_id == parent_id

    # When its index keys are built, then the node sorts among its parent's nodes as index 0
    keys = index_keys(record)
    assert keys["gsi4pk"] == f"P#{parent_id}"
    assert keys["gsi4sk"] == f"{record.status}#000000"
