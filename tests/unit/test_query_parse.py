"""What a person types into `batchlens jobs|failures|stats`: times, statuses, categories, ids;
and which index (and which day partitions) a question is served from."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from batchlens import cli
from batchlens.events import RETENTION_DAYS_MAX
from batchlens.query import (
    JobQuery,
    QueryError,
    iso,
    job_id_of,
    parse_categories,
    parse_statuses,
    parse_time,
)
from tests.conftest import local_time

NOW = datetime(2025, 3, 14, 10, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def berlin() -> Iterator[None]:
    """Local time is Europe/Berlin (UTC+1 in March), to tell local from UTC."""
    with local_time("Europe/Berlin"):
        yield


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("90s", NOW - timedelta(seconds=90)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        (" 7 D ", NOW - timedelta(days=7)),
        ("now", NOW),
        ("today", datetime(2025, 3, 13, 23, 0, tzinfo=UTC)),  # local midnight
        ("yesterday", datetime(2025, 3, 12, 23, 0, tzinfo=UTC)),
        ("2025-03-01", datetime(2025, 2, 28, 23, 0, tzinfo=UTC)),  # a date is local
        ("2025-03-01T09:30", datetime(2025, 3, 1, 8, 30, tzinfo=UTC)),
        ("2025-03-01T09:30:00Z", datetime(2025, 3, 1, 9, 30, tzinfo=UTC)),
        ("2025-03-01T09:30:00+05:30", datetime(2025, 3, 1, 4, 0, tzinfo=UTC)),
    ],
)
def test_time_expressions(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize(
    ("now", "text", "expected"),
    [
        # The day after summer time ends in Berlin (26 Oct 2025): yesterday began at UTC+2
        (
            datetime(2025, 10, 27, 10, 0, tzinfo=UTC),
            "yesterday",
            datetime(2025, 10, 25, 22, 0, tzinfo=UTC),
        ),
        (
            datetime(2025, 10, 27, 10, 0, tzinfo=UTC),
            "today",
            datetime(2025, 10, 26, 23, 0, tzinfo=UTC),
        ),
        # The day after it begins (30 Mar 2025): yesterday began at UTC+1
        (
            datetime(2025, 3, 31, 10, 0, tzinfo=UTC),
            "yesterday",
            datetime(2025, 3, 29, 23, 0, tzinfo=UTC),
        ),
    ],
)
def test_yesterday_and_today_begin_at_their_own_local_midnight(
    now: datetime, text: str, expected: datetime
) -> None:
    assert parse_time(text, now) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1000000d",
        "100000000w",
        "0001-01-01",
        # In range as written, but not in UTC, where the queries take them
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_a_time_out_of_range_is_a_query_error(text: str) -> None:
    with pytest.raises(QueryError, match=re.escape(f"time '{text}' is out of range")):
        parse_time(text, NOW)


@pytest.mark.parametrize("text", ["", "7", "d7", "7 days ago", "2025-13-01", "last tuesday"])
def test_a_bad_time_expression_says_which_forms_work(text: str) -> None:
    with pytest.raises(QueryError, match=r"bad time .*use a duration ago \(30m, 24h, 7d, 2w\)"):
        parse_time(text, NOW)


def test_statuses_repeat_or_comma_separate_in_any_case_once_each() -> None:
    assert parse_statuses(["failed,Succeeded", "FAILED", " running "]) == (
        "FAILED",
        "SUCCEEDED",
        "RUNNING",
    )
    assert parse_statuses(None) == ()


def test_an_unknown_status_names_the_known_ones() -> None:
    with pytest.raises(QueryError, match=r"unknown status 'FAILD'; expected one of SUBMITTED, "):
        parse_statuses(["FAILD"])


def test_categories_accept_dashes_and_any_case() -> None:
    assert parse_categories(["out-of-memory", "HOST_TERMINATED"]) == (
        "OUT_OF_MEMORY",
        "HOST_TERMINATED",
    )
    with pytest.raises(QueryError, match="unknown failure category 'OOM'"):
        parse_categories(["OOM"])


def test_days_are_the_utc_partitions_newest_first() -> None:
    question = JobQuery(
        since=datetime(2025, 3, 12, 23, 30, tzinfo=UTC),
        until=datetime(2025, 3, 14, 0, 5, tzinfo=UTC),
    )
    assert question.days() == ["2025-03-14", "2025-03-13", "2025-03-12"]


def test_seven_days_touch_eight_partitions() -> None:
    question = JobQuery(since=NOW - timedelta(days=7), until=NOW)
    assert len(question.days()) == 8


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "byDay"),
        ({"statuses": ("FAILED",)}, "byDay"),
        ({"categories": ("TIMEOUT",)}, "byDay"),
        ({"queue": "etl"}, "byQueueStatus"),
        ({"queue": "etl", "statuses": ("FAILED",)}, "byQueueStatus"),
        ({"name_prefix": "etl-"}, "byName"),
        ({"name_prefix": "etl-", "queue": "etl"}, "byName"),
    ],
)
def test_each_question_has_one_index(filters: dict[str, object], index: str) -> None:
    question = JobQuery(since=NOW - timedelta(days=1), until=NOW, **filters)  # type: ignore[arg-type]
    assert question.index_name == index


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(QueryError, match=r"--since \(2025-03-14T10:30:00.000Z\) is after --until"):
        JobQuery(since=NOW, until=NOW - timedelta(seconds=1))


def test_job_ids_may_be_given_as_job_arns() -> None:
    arn = "arn:aws:batch:us-east-1:123456789012:job/91d1d12f-bc0b-41ab-bc38-add9e258cb98"
    assert job_id_of(arn) == "91d1d12f-bc0b-41ab-bc38-add9e258cb98"
    service = (
        "arn:aws:batch:us-east-1:123456789012:service-job/dd1ae850-27f7-4cbb-be07-b4d50cb5c32a"
    )
    assert job_id_of(service) == "dd1ae850-27f7-4cbb-be07-b4d50cb5c32a"
    assert job_id_of(" 7e5f376f-6a34-459d-a1e0-46a88061cd91:7 ") == (
        "7e5f376f-6a34-459d-a1e0-46a88061cd91:7"
    )


# --- behaviour pinned by a mutation review ---------------------------------------------------


def test_minutes_may_be_spelled_min() -> None:
    # Given minutes typed as `min`, when parsed, then they are minutes ago, as `m` is
    assert parse_time("30min", NOW) == NOW - timedelta(minutes=30)


def test_an_empty_or_trailing_comma_separated_value_is_no_status() -> None:
    # Given statuses typed with a trailing comma and an empty value, as a shell variable leaves
    # When they are parsed
    # Then the empty parts are skipped, not refused as an unknown status
    assert parse_statuses(["FAILED,", ",", ""]) == ("FAILED",)


@pytest.mark.parametrize(
    ("parse", "option"), [(parse_statuses, "--status"), (parse_categories, "--category")]
)
@pytest.mark.parametrize("values", [[""], ["  "], [",", ""]])
def test_only_blank_values_are_refused_rather_than_read_as_every_one(
    parse: Callable[[list[str]], tuple[str, ...]], option: str, values: list[str]
) -> None:
    # Given `--status "$STATUS"` with STATUS unset (and nothing else for that option)
    # When parsed; then it is refused, instead of answering for every status or category
    with pytest.raises(QueryError, match=f"^{option} needs a value; leave it out for every job$"):
        parse(values)


def test_a_range_of_one_instant_is_a_question() -> None:
    # Given --since and --until naming the same moment (the jobs updated in that millisecond)
    # When the question is built
    question = JobQuery(since=NOW, until=NOW)

    # Then it is accepted and reads that day
    assert question.days() == ["2025-03-14"]


def test_key_times_are_utc_whatever_the_local_zone() -> None:
    # Given a date typed without an offset, which is local (Berlin) midnight
    since = parse_time("2025-03-14", NOW)

    # When it becomes a key bound, then it is written in the history's own form, UTC with `Z`,
    # so that it compares with the stored `<updatedAt>#<jobId>` sort keys as the time it is
    assert iso(since) == "2025-03-13T23:00:00.000Z"


@pytest.mark.parametrize(
    ("field", "value", "option"),
    [("queue", "", "--queue"), ("queue", "  ", "--queue"), ("name_prefix", "", "--name")],
)
def test_an_empty_queue_or_name_is_refused_not_read_as_every_job(
    field: str, value: str, option: str
) -> None:
    # An unset shell variable (`--queue "$QUEUE"`) must not widen the question to every queue.
    with pytest.raises(QueryError, match=rf"^{option} needs a value; leave it out for every job"):
        JobQuery(
            since=datetime(2025, 3, 12, tzinfo=UTC),
            until=datetime(2025, 3, 14, tzinfo=UTC),
            **{field: value},  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("since", ["0001-01-02T00:00:00Z", "2000-01-01", "99999d"])
def test_a_range_starts_no_earlier_than_the_longest_retention(since: str) -> None:
    # Given a --since older than any RetentionDays keeps a job (each day of a range costs queries)
    args = argparse.Namespace(since=since, until=None)

    # When the command's range is made
    before = datetime.now(tz=UTC)
    start, end = cli._time_range(args)

    # Then it starts RETENTION_DAYS_MAX days before now, not at the time given
    oldest = before - timedelta(days=RETENTION_DAYS_MAX)
    assert oldest <= start <= oldest + timedelta(minutes=1)
    assert end >= before


def test_a_range_entirely_older_than_the_longest_retention_stays_empty_and_valid() -> None:
    args = argparse.Namespace(since="1990-01-01T00:00:00Z", until="2000-01-01T00:00:00Z")
    start, end = cli._time_range(args)
    assert start == end == datetime(2000, 1, 1, tzinfo=UTC)
