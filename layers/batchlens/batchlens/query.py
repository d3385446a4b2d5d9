"""The read side of the history: which index answers a question, its queries, and the aggregates.

Every question is a key or index query, never a Scan (see the README's access-pattern table):

| question                          | index           | one Query per                        |
|-----------------------------------|-----------------|--------------------------------------|
| jobs of a queue (by status, time) | `byQueueStatus` | status (the time range is in the key)|
| jobs by status over time          | `byDay`         | day and status, newest day first     |
| jobs by name prefix over time     | `byName`        | day, newest day first                |

Queries are lazy and stop at the limit: the Query calls a command makes grow with the pages it
shows (and the days it spans), not with the size of the table. A category, and for `byName` the
status, queue and time range, narrow the index query with a FilterExpression.

Time expressions, percentiles and grouping are pure; only `find_jobs` and `table_from_stack` talk
to AWS, through the adapter they are given. CLI-only: the Lambda never imports this module.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from batchlens.events import SERVICE_JOB_STATUSES
from batchlens.failures import FailureCategory
from batchlens.history import HistoryTable

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

#: Every status a job (or a service job) can have, in the order a job moves through them.
STATUSES = SERVICE_JOB_STATUSES
CATEGORIES = tuple(category.value for category in FailureCategory)
#: Parents are summed up by their children (array) or nodes (multi-node); stats count those.
PARENT_KINDS = frozenset({"ARRAY_PARENT", "MULTINODE_PARENT"})
GROUP_BY = ("category", "queue", "jobDefinition")
STACK_OUTPUT = "HistoryTableName"
#: Largest page asked for when the caller wants a few items; with a filter DynamoDB's 1 MB
#: page applies instead (Limit counts items before the filter).
MAX_PAGE = 500
#: Partitions read at once when every match is wanted (boto3 clients are thread-safe).
PARALLEL_READS = 8

_RELATIVE = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class QueryError(ValueError):
    """A question the history cannot answer as asked; the message says what to change."""


# --- parsing what a person typed ----------------------------------------------------------


def parse_time(text: str, now: datetime) -> datetime:
    """`30m`, `24h`, `7d`, `2w` ago; `now`, `today`, `yesterday`; or an ISO date or date-time.

    A date or date-time without an offset is local time, like the times in the table output.
    """
    try:
        moment = _moment(text.strip(), now)
        if moment is not None:  # its offset can carry it past year 1 or 9999 in UTC
            moment.astimezone(UTC)
    except (OverflowError, ValueError):  # year 0 or 10000, a duration of a million days
        raise QueryError(f"time {text!r} is out of range") from None
    if moment is None:
        raise QueryError(
            f"bad time {text!r}: use a duration ago (30m, 24h, 7d, 2w), now, today, yesterday, "
            "or an ISO date or time (2025-03-14, 2025-03-14T09:30, 2025-03-14T09:30:00Z)"
        )
    return moment


def _moment(value: str, now: datetime) -> datetime | None:
    """The moment `value` names; None when it is none of the forms `parse_time` takes."""
    lowered = value.lower()
    if lowered == "now":
        return now
    if lowered in ("today", "yesterday"):
        # The day is counted back before the local offset is taken: across a change to or from
        # summer time, yesterday's midnight has another offset than today's.
        day = now.astimezone().date() - timedelta(days=1 if lowered == "yesterday" else 0)
        return datetime.combine(day, time()).astimezone()
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        return now - timedelta(seconds=amount * _UNITS[unit])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.astimezone()


def parse_statuses(values: Iterable[str] | None) -> tuple[str, ...]:
    """Statuses as typed (repeated, or comma-separated, any case), checked and de-duplicated."""
    return _parse_names(values, STATUSES, "status", "--status")


def parse_categories(values: Iterable[str] | None) -> tuple[str, ...]:
    return _parse_names(values, CATEGORIES, "failure category", "--category")


def _parse_names(
    values: Iterable[str] | None, allowed: Sequence[str], what: str, option: str
) -> tuple[str, ...]:
    given = list(values or ())
    names: list[str] = []
    for value in given:
        for part in value.split(","):
            name = part.strip().upper().replace("-", "_")
            if not name:
                continue  # a trailing comma, or one of several values left empty
            if name not in allowed:
                raise QueryError(
                    f"unknown {what} {part.strip()!r}; expected one of {', '.join(allowed)}"
                )
            if name not in names:
                names.append(name)
    if given and not names:
        raise blank_option(option)
    return tuple(names)


def blank_option(option: str) -> QueryError:
    """An option given only blanks (an unset shell variable), which must not widen the question
    to every job."""
    return QueryError(f"{option} needs a value; leave it out for every job")


def iso(moment: datetime) -> str:
    """The history's time format: ISO-8601 UTC, milliseconds, `Z` (sorts as it reads)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the question and the queries that answer it ------------------------------------------


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Which jobs to list: latest states updated between `since` and `until`, newest first."""

    since: datetime
    until: datetime
    statuses: tuple[str, ...] = ()
    queue: str | None = None
    categories: tuple[str, ...] = ()
    name_prefix: str | None = None
    #: None: every match.
    limit: int | None = None

    def __post_init__(self) -> None:
        for option, value in (("--queue", self.queue), ("--name", self.name_prefix)):
            if value is not None and not value.strip():
                raise blank_option(option)
        if self.since > self.until:
            raise QueryError(f"--since ({iso(self.since)}) is after --until ({iso(self.until)})")
        if self.limit is not None and self.limit < 1:
            raise QueryError("--limit must be a positive number (0 means no limit)")

    @property
    def index_name(self) -> str:
        if self.name_prefix:
            return "byName"
        if self.queue:
            return "byQueueStatus"
        return "byDay"

    def days(self) -> list[str]:
        """The UTC days (index partitions) the range touches, newest first."""
        first, last = self.since.astimezone(UTC).date(), self.until.astimezone(UTC).date()
        return [(last - timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def find_jobs(
    history: HistoryTable, query: JobQuery, unreadable: Callable[[str], None] | None = None
) -> Iterator[dict[str, Any]]:
    """JobRecords (as stored) matching `query`, newest first, at most `query.limit`.

    A job whose item holds no readable record is left out (it does not count towards the
    limit) and its id passed to `unreadable`.
    """
    if query.name_prefix:
        items = _by_name(history, query)
    elif query.queue:
        items = _by_queue(history, query)
    else:
        items = _by_day(history, query)
    seen: set[str] = set()
    found = 0
    for item in items:
        job_id = str(item.get("pk", ""))
        # A job that changes status while we page can show up in two partitions; keep the first.
        if job_id in seen:
            continue
        seen.add(job_id)
        record = item.get("record")
        if not isinstance(record, dict):
            if unreadable is not None:
                unreadable(job_id.removeprefix("JOB#"))
            continue
        yield record
        found += 1
        if query.limit is not None and found >= query.limit:
            return


def _newest_key(item: Mapping[str, Any]) -> str:
    # Every latest item carries `<updatedAt>#<jobId>` as gsi2sk (and gsi1sk), whatever index
    # it was read from.
    return str(item.get("gsi2sk", ""))


def _category_filter(
    query: JobQuery, names: dict[str, str], values: dict[str, AttributeValueTypeDef]
) -> list[str]:
    if not query.categories:
        return []
    names["#category"] = "category"
    placeholders = []
    for n, category in enumerate(query.categories):
        values[f":c{n}"] = {"S": category}
        placeholders.append(f":c{n}")
    return [f"#category IN ({', '.join(placeholders)})"]


def _page_size(query: JobQuery, filtered: bool) -> int | None:
    if filtered or query.limit is None:
        return None
    return min(query.limit, MAX_PAGE)


def _range_values(query: JobQuery) -> dict[str, AttributeValueTypeDef]:
    # Sort keys are `<updatedAt>#<jobId>`: every key of the last millisecond sorts below `~`.
    return {":lo": {"S": iso(query.since)}, ":hi": {"S": iso(query.until) + "~"}}


def _merged(streams: Sequence[Iterator[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_newest_key, reverse=True)


Reader = Callable[[], Iterator[dict[str, Any]]]


def _read_all(read: Reader) -> list[dict[str, Any]]:
    return list(read())


class _ReadAhead:
    """The items of each partition (one reader each), in the readers' order.

    With a limit, lazily: a partition is queried only when the merge reaches it, so the limit
    stops the queries. Without one (stats, failures, `--limit 0`) every partition is needed, so
    the next few are read in parallel while one is consumed; memory stays a few partitions deep
    and the aggregates stream.
    """

    def __init__(self, query: JobQuery, readers: Sequence[Reader]) -> None:
        self._readers = readers
        parallel = query.limit is None and len(readers) > 1
        self._pool = ThreadPoolExecutor(max_workers=PARALLEL_READS) if parallel else None
        self._futures: dict[int, Future[list[dict[str, Any]]]] = {}
        self._submitted = 0

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *_: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def stream(self, index: int) -> Iterator[dict[str, Any]]:
        if self._pool is None:
            yield from self._readers[index]()
            return
        while self._submitted < min(index + 2 * PARALLEL_READS, len(self._readers)):
            self._futures[self._submitted] = self._pool.submit(
                _read_all, self._readers[self._submitted]
            )
            self._submitted += 1
        yield from self._futures.pop(index).result()


def _by_day(history: HistoryTable, query: JobQuery) -> Iterator[dict[str, Any]]:
    """byDay: one query per (day, status), newest day first; statuses of a day merged by time."""
    names: dict[str, str] = {}
    shared = _range_values(query)
    conditions = _category_filter(query, names, shared)
    statuses = query.statuses or STATUSES
    days = query.days()

    def reader(day: str, status: str) -> Reader:
        return lambda: history.query_latest(
            "byDay",
            "gsi2pk = :pk AND gsi2sk BETWEEN :lo AND :hi",
            {**shared, ":pk": {"S": f"D#{day}#{status}"}},
            names=names or None,
            filter_expression=" AND ".join(conditions) or None,
            page_size=_page_size(query, bool(conditions)),
        )

    with _ReadAhead(query, [reader(day, status) for day in days for status in statuses]) as ahead:
        for n in range(len(days)):
            first = n * len(statuses)
            yield from _merged([ahead.stream(first + k) for k in range(len(statuses))])


def _by_queue(history: HistoryTable, query: JobQuery) -> Iterator[dict[str, Any]]:
    """byQueueStatus: one query per status over the whole range, merged by time."""
    names: dict[str, str] = {}
    shared = _range_values(query)
    conditions = _category_filter(query, names, shared)

    def reader(status: str) -> Reader:
        return lambda: history.query_latest(
            "byQueueStatus",
            "gsi1pk = :pk AND gsi1sk BETWEEN :lo AND :hi",
            {**shared, ":pk": {"S": f"Q#{query.queue}#{status}"}},
            names=names or None,
            filter_expression=" AND ".join(conditions) or None,
            page_size=_page_size(query, bool(conditions)),
        )

    statuses = query.statuses or STATUSES
    with _ReadAhead(query, [reader(status) for status in statuses]) as ahead:
        yield from _merged([ahead.stream(k) for k in range(len(statuses))])


def _by_name(history: HistoryTable, query: JobQuery) -> Iterator[dict[str, Any]]:
    """byName: one query per day (its keys sort by name: each day's entries are sorted by time
    before their records are read, so a limit reads only the records it shows)."""
    names: dict[str, str] = {"#updated": "gsi2sk"}
    values: dict[str, AttributeValueTypeDef] = {
        ":prefix": {"S": query.name_prefix or ""},
        **_range_values(query),
    }
    conditions = ["#updated BETWEEN :lo AND :hi"]
    if query.statuses:
        names["#status"] = "status"
        for n, status in enumerate(query.statuses):
            values[f":s{n}"] = {"S": status}
        placeholders = ", ".join(f":s{n}" for n in range(len(query.statuses)))
        conditions.append(f"#status IN ({placeholders})")
    if query.queue:
        names["#jobQueue"] = "jobQueue"
        values[":queue"] = {"S": query.queue}
        conditions.append("#jobQueue = :queue")
    conditions += _category_filter(query, names, values)

    def reader(day: str) -> Reader:
        return lambda: history.query_latest(
            "byName",
            "gsi3pk = :pk AND begins_with(gsi3sk, :prefix)",
            {**values, ":pk": {"S": f"N#{day}"}},
            names=names,
            filter_expression=" AND ".join(conditions),
            newest_by="gsi2sk",
        )

    days = query.days()
    with _ReadAhead(query, [reader(day) for day in days]) as ahead:
        for n in range(len(days)):
            yield from ahead.stream(n)


def table_from_stack(cloudformation: CloudFormationClient, stack_name: str) -> str:
    """The history table's name from a deployed stack's `HistoryTableName` output."""
    stacks = cloudformation.describe_stacks(StackName=stack_name).get("Stacks", [])
    for stack in stacks:
        for output in stack.get("Outputs", []):
            if output.get("OutputKey") == STACK_OUTPUT and output.get("OutputValue"):
                return output["OutputValue"]
    raise QueryError(f"stack {stack_name!r} has no {STACK_OUTPUT} output; is it a batchlens stack?")


def job_id_of(text: str) -> str:
    """A job id, also when given as a job ARN (`arn:…:job/<id>`, `arn:…:service-job/<id>`)."""
    value = text.strip()
    if value.startswith("arn:"):
        for resource in (":job/", ":service-job/"):
            if resource in value:
                return value.rsplit(resource, 1)[1]
    return value


# --- aggregates (pure) --------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile: a value that occurred, `p` in (0, 100]; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def field_map(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """`record[key]` where it is a JSON object, else empty: a record cut short or written by
    another version must cost its own fields, not the whole answer."""
    value = record.get(key)
    return value if isinstance(value, Mapping) else {}


def group_key(record: Mapping[str, Any], by: str) -> str:
    if by == "category":
        return str(field_map(record, "failure").get("category") or "UNKNOWN")
    if by == "queue":
        return str(field_map(record, "jobQueue").get("name") or "-")
    if by == "jobDefinition":
        definition = field_map(record, "jobDefinition")
        if definition.get("name"):
            return str(definition["name"])
        return str(record.get("serviceJobType") or "-")
    raise QueryError(f"cannot group by {by!r}; expected one of {', '.join(GROUP_BY)}")


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failed jobs that share a category, queue or job definition."""

    key: str
    count: int
    share: float
    #: The group's most recent failure, as an example of it.
    example: Mapping[str, Any]

    @property
    def last_failed_at(self) -> str:
        return str(self.example.get("eventTime") or "")


def group_failures(records: Iterable[Mapping[str, Any]], by: str) -> list[FailureGroup]:
    """Failures grouped: the largest group first, each with its newest failure as example."""
    counts: dict[str, int] = defaultdict(int)
    newest: dict[str, Mapping[str, Any]] = {}
    total = 0
    for record in records:
        key = group_key(record, by)
        counts[key] += 1
        total += 1
        if key not in newest or _event_time(record) > _event_time(newest[key]):
            newest[key] = record
    groups = [
        FailureGroup(key=key, count=count, share=count / total, example=newest[key])
        for key, count in counts.items()
    ]
    return sorted(groups, key=lambda g: (-g.count, g.key))


def _event_time(record: Mapping[str, Any]) -> str:
    return f"{record.get('eventTime') or ''}#{record.get('jobId') or ''}"


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A queue's jobs over a time range: how many, how many failed, how long they waited and ran."""

    queue: str
    jobs: int
    succeeded: int
    failed: int
    queue_wait_p50: float | None
    queue_wait_p95: float | None
    run_p50: float | None
    run_p95: float | None

    @property
    def failure_rate(self) -> float | None:
        """Failed among finished jobs; None while none has finished."""
        finished = self.succeeded + self.failed
        return self.failed / finished if finished else None


def queue_stats(records: Iterable[Mapping[str, Any]]) -> list[QueueStats]:
    """Per queue (by name): jobs, outcomes, p50/p95 of queue wait and of run time.

    Array and multi-node parents are left out: their children and nodes count one by one.
    Queue wait is created → first start; run time is the last attempt's start → stop of jobs
    that finished.
    """
    jobs: dict[str, int] = defaultdict(int)
    succeeded: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)
    waits: dict[str, list[float]] = defaultdict(list)
    runs: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if record.get("jobKind") in PARENT_KINDS:
            continue
        queue = str(field_map(record, "jobQueue").get("name") or "-")
        jobs[queue] += 1
        status = record.get("status")
        if status == "SUCCEEDED":
            succeeded[queue] += 1
        elif status == "FAILED":
            failed[queue] += 1
        if isinstance(record.get("queuedSeconds"), int | float):
            waits[queue].append(float(record["queuedSeconds"]))
        if record.get("isTerminal") and isinstance(record.get("runSeconds"), int | float):
            runs[queue].append(float(record["runSeconds"]))
    return [
        QueueStats(
            queue=queue,
            jobs=count,
            succeeded=succeeded[queue],
            failed=failed[queue],
            queue_wait_p50=percentile(waits[queue], 50),
            queue_wait_p95=percentile(waits[queue], 95),
            run_p50=percentile(runs[queue], 50),
            run_p95=percentile(runs[queue], 95),
        )
        for queue, count in sorted(jobs.items())
    ]
