"""The `batchlens` command line.

`explain` works offline (no AWS call); `demo` runs the real pipeline on a local AWS stand-in;
`jobs`, `job`, `failures` and `stats` query the history table (key and index queries only, see
batchlens.query); `backfill` loads the jobs AWS Batch still remembers into it.
Only the standard library is used here, so the console script adds nothing to the Lambda layer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from batchlens import __version__

if TYPE_CHECKING:
    from batchlens.access import Connection
    from batchlens.history import HistoryTable
    from batchlens.records import JobRecord
    from batchlens.redact import Redactor

#: What an argparse type converts to: a whole number or a float.
_Number = TypeVar("_Number", int, float)

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2


class CliError(Exception):
    """An error for a person: printed as one line, exit status non-zero."""


def _events_in(document: Any) -> Iterator[Any]:
    """The EventBridge events in one input: an event, a list of them, or an SQS event."""
    if isinstance(document, list):
        yield from document
    elif isinstance(document, dict) and isinstance(document.get("Records"), list):
        for record in document["Records"]:
            yield record.get("body") if isinstance(record, dict) else record
    else:
        yield document


def _read(source: str, stdin: TextIO) -> str:
    if source == "-":
        return stdin.read().removeprefix("\ufeff")
    try:
        # utf-8-sig: a byte-order mark (Notepad, PowerShell 5's -Encoding UTF8) is not JSON's
        return Path(source).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CliError(exc.strerror or str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"not UTF-8 text: {exc.reason}") from exc


class EventFiles:
    """Events from FILE arguments, normalised offline; each problem is printed as one line."""

    def __init__(self, files: Sequence[str], stdin: TextIO, stderr: TextIO) -> None:
        self.files, self.stdin, self.stderr = files, stdin, stderr
        self.status = EXIT_OK

    def _problem(self, where: str, text: str) -> None:
        print(f"batchlens: {where}: {text}", file=self.stderr)
        self.status = EXIT_BAD_INPUT

    def records(self, redactor: Redactor) -> Iterator[tuple[str, JobRecord]]:
        """(where, record) per event, in input order; `where` names the file (and position)."""
        from batchlens.events import InvalidEvent, parse_event
        from batchlens.records import normalise

        for source in self.files:
            name = "<stdin>" if source == "-" else source
            try:
                document = json.loads(_read(source, self.stdin))
            except CliError as exc:
                self._problem(name, str(exc))
                continue
            except ValueError as exc:
                self._problem(name, f"not JSON: {exc}")
                continue
            events = list(_events_in(document))
            # A file of one event names it; a list's or an SQS event's events have positions.
            single = len(events) == 1 and not isinstance(document, list)
            for position, event in enumerate(events, start=1):
                where = name if position == 1 and single else f"{name}#{position}"
                try:
                    record = normalise(parse_event(event), redactor=redactor)
                except InvalidEvent as exc:
                    self._problem(where, str(exc))
                    continue
                yield where, record


def explain(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """Normalise events offline: one JobRecord JSON per input event, in input order."""
    from batchlens.redact import Redactor

    inputs = EventFiles(args.files, stdin, stderr)
    indent = 2 if args.pretty else None
    for _, record in inputs.records(Redactor(args.allow or ())):
        print(json.dumps(record.to_json_dict(), indent=indent), file=stdout)
    return inputs.status


def demo(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    from batchlens import demo as local_demo

    try:
        if args.stop:
            return local_demo.stop(stdout)
        return local_demo.run(keep_running=args.keep_running, port=args.port, out=stdout)
    except local_demo.DemoError as exc:
        raise CliError(str(exc)) from exc


# --- querying the history -----------------------------------------------------------------


@contextlib.contextmanager
def _for_a_person() -> Iterator[None]:
    """The CLI's own errors (bad input, AWS refusing) become one line and a non-zero exit."""
    from batchlens.access import AccessError
    from batchlens.backfill import BackfillError
    from batchlens.query import QueryError

    try:
        yield
    except (AccessError, BackfillError, QueryError) as exc:
        raise CliError(str(exc)) from exc


class _CallCounter:
    """`--verbose`: counts the AWS calls of a command (a botocore `after-call` hook)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        self.calls[operation] = self.calls.get(operation, 0) + 1

    def report(self, stderr: TextIO, started: float) -> None:
        import time

        calls = ", ".join(f"{n} {op}" for op, n in sorted(self.calls.items())) or "no AWS calls"
        print(f"batchlens: {calls} in {time.perf_counter() - started:.2f} s", file=stderr)


def _open_history(
    args: argparse.Namespace, counter: _CallCounter | None = None, retention_days: int = 90
) -> tuple[HistoryTable, Connection]:
    from batchlens.access import connect, table_name, translated
    from batchlens.history import HistoryTable

    connection = connect(
        profile=args.profile, region=args.region, endpoint_url=args.endpoint_url, environ=os.environ
    )
    if counter is not None:
        # On the session, so every client counts: --stack's DescribeStacks as well as DynamoDB.
        connection.session.events.register("after-call", counter)
    name = table_name(connection, table=args.table, stack=args.stack, environ=os.environ)
    with translated("history table", connection=connection, table=name):
        client = connection.client("dynamodb")
    return HistoryTable(client, name, retention_days), connection


#: How far this machine's clock may run behind AWS's: AWS accepts requests signed up to 15 minutes
#: off its own clock.
CLOCK_SKEW = timedelta(minutes=15)


def _time_range(args: argparse.Namespace) -> tuple[datetime, datetime]:
    from batchlens.events import RETENTION_DAYS_MAX
    from batchlens.query import parse_time

    now = datetime.now(tz=UTC)
    # Nothing is stored after AWS's now: a later --until would only add empty day partitions to
    # read. Records carry AWS's event times, so a clock running behind must not hide the newest.
    latest = now + CLOCK_SKEW
    # `--until ""` (an unset shell variable) is a mistake, not "now": parse_time refuses it.
    until = min(parse_time(args.until, now), latest) if args.until is not None else latest
    # Nothing outlives the longest RetentionDays, and each day of the range costs queries:
    # `--since 2000-01-01` reads at most that many days, not 9,000.
    oldest = min(now - timedelta(days=RETENTION_DAYS_MAX), until)
    return max(parse_time(args.since, now), oldest), until


@contextlib.contextmanager
def _querying(args: argparse.Namespace, stderr: TextIO) -> Iterator[tuple[HistoryTable, Any]]:
    """The history table of a query command, AWS errors translated, calls reported if asked."""
    import time

    from batchlens.access import translated

    started = time.perf_counter()
    counter = _CallCounter() if args.verbose else None
    history, connection = _open_history(args, counter)
    with translated("query", connection=connection, table=history.table_name):
        yield history, connection
    if counter is not None:
        counter.report(stderr, started)


class _Unreadable:
    """Jobs left out of an answer because their stored record cannot be read: one line each on
    stderr, and exit status 1, as the answer is short of them."""

    def __init__(self, stderr: TextIO) -> None:
        self.stderr = stderr
        self.count = 0

    def __call__(self, job_id: str) -> None:
        print(
            f"batchlens: job {job_id!r}: its stored record is not a JobRecord; left out",
            file=self.stderr,
        )
        self.count += 1

    @property
    def status(self) -> int:
        return EXIT_BAD_INPUT if self.count else EXIT_OK


def jobs(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """Jobs by queue, status, category, name prefix and time, newest first."""
    from batchlens import query, render

    with _for_a_person():
        since, until = _time_range(args)
        question = query.JobQuery(
            since=since,
            until=until,
            statuses=query.parse_statuses(args.status),
            queue=args.queue,
            categories=query.parse_categories(args.category),
            name_prefix=args.name,
            limit=args.limit or None,
        )
        unreadable = _Unreadable(stderr)
        with _querying(args, stderr) as (history, _):
            found = query.find_jobs(history, question, unreadable)
            shown = render.write_jobs(found, args.output, stdout)
    if args.output == "table":
        if shown == 0:
            print("No jobs match.", file=stderr)
        elif question.limit is not None and shown >= question.limit:
            print(f"(the newest {shown}; --limit N shows more, --limit 0 all)", file=stderr)
    return unreadable.status


def job(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """One job (or several): the latest record, its attempts and its timeline."""
    from batchlens import render
    from batchlens.history import UnreadableRecord
    from batchlens.query import job_id_of

    status = EXIT_OK
    shown = 0
    with _for_a_person(), _querying(args, stderr) as (history, _):
        for given in args.job_ids:
            job_id = job_id_of(given)
            try:
                stored = history.get_latest(job_id)
            except UnreadableRecord as exc:
                print(f"batchlens: {exc}", file=stderr)
                status = EXIT_BAD_INPUT
                continue
            if stored is None or stored.expired:
                print(f"batchlens: no job {job_id!r} in {history.table_name}", file=stderr)
                status = EXIT_BAD_INPUT
                continue
            timeline = history.timeline(job_id, unexpired=True) if args.output == "table" else []
            if shown and args.output == "table":
                print(file=stdout)
            # Several jobs as CSV are one CSV: its header comes once.
            render.write_job(stored.record, timeline, args.output, stdout, header=not shown)
            shown += 1
    return status


def failures(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """Failed jobs grouped by category, queue or job definition, with an example of each."""
    from batchlens import query, render

    with _for_a_person():
        since, until = _time_range(args)
        question = query.JobQuery(
            since=since,
            until=until,
            statuses=("FAILED",),
            queue=args.queue,
            categories=query.parse_categories(args.category),
        )
        unreadable = _Unreadable(stderr)
        with _querying(args, stderr) as (history, _):
            groups = query.group_failures(query.find_jobs(history, question, unreadable), args.by)
    if not groups and args.output == "table":
        print("No failed jobs.", file=stderr)
        return unreadable.status
    render.write_failures(groups, args.by, args.output, stdout)
    return unreadable.status


def stats(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """Per queue: jobs, failure rate, p50/p95 queue wait and run time."""
    from batchlens import query, render

    with _for_a_person():
        since, until = _time_range(args)
        question = query.JobQuery(since=since, until=until, queue=args.queue)
        unreadable = _Unreadable(stderr)
        with _querying(args, stderr) as (history, _):
            per_queue = query.queue_stats(query.find_jobs(history, question, unreadable))
    if not per_queue and args.output == "table":
        print("No jobs in that time range.", file=stderr)
        return unreadable.status
    render.write_stats(per_queue, args.output, stdout)
    return unreadable.status


def backfill(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """Load the jobs AWS Batch still remembers into the history, idempotently and slowly."""
    import time

    from batchlens import backfill as loader
    from batchlens.access import translated
    from batchlens.query import parse_time
    from batchlens.redact import Redactor

    def progress(line: str) -> None:
        print(f"backfill: {line}", file=stderr, flush=True)

    with _for_a_person():
        # `--since ""` (an unset shell variable) is refused, not read as "every job".
        since = parse_time(args.since, datetime.now(tz=UTC)) if args.since is not None else None
        started = time.perf_counter()
        counter = _CallCounter() if args.verbose else None
        history, connection = _open_history(args, counter, retention_days=args.retention_days)
        with translated("backfill", connection=connection, table=history.table_name):
            # A read of one key no job has, so a mistyped --table fails now: before minutes of
            # listing, and even when nothing needs writing. BatchGetItem, as the run reads.
            history.stored_versions(["batchlens-backfill-probe"])
            batch = connection.client("batch")
            loader.TokenBucket(args.rate).install(batch)
            run = loader.Backfill(
                batch,
                history,
                since=since,
                children=args.children,
                redactor=Redactor(args.allow or ()),
                progress=progress,
                retention_days=history.retention_days,
            )
            result = run.run(args.queue or ())
    if counter is not None:
        counter.report(stderr, started)
    summary = result.as_dict()
    if args.output == "json":
        print(json.dumps(summary), file=stdout)
    else:
        print(
            f"{result.listed} jobs listed in {result.queues} queues: {result.written} written, "
            f"{result.unchanged} unchanged, {result.newer_in_table} newer in the history, "
            f"{result.vanished} stored from their ListJobs summary (gone before DescribeJobs), "
            f"{result.outside_range} outside --since or --retention-days, {result.failed} failed",
            file=stdout,
        )
    return EXIT_BAD_INPUT if result.failed else EXIT_OK


def _history_options() -> argparse.ArgumentParser:
    """Options every command that reads or writes the history table shares."""
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_argument_group("where the history table is")
    where.add_argument(
        "--table", metavar="NAME", help="the history table (default: $BATCHLENS_TABLE)"
    )
    where.add_argument(
        "--stack",
        metavar="NAME",
        help="a deployed batchlens stack: read the table from its HistoryTableName output",
    )
    where.add_argument("--profile", metavar="NAME", help="the AWS profile to use")
    where.add_argument(
        "--region",
        metavar="REGION",
        help="the AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, then the profile's; "
        "us-east-1 for an endpoint on this machine)",
    )
    where.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="an AWS stand-in, e.g. the local stack of `make demo-up` "
        "(default: $BATCHLENS_ENDPOINT_URL)",
    )
    where.add_argument(
        "-v", "--verbose", action="store_true", help="report the AWS calls made, on stderr"
    )
    return options


_OUTPUT_FORMATS = {
    "table": "table (local times)",
    "json": "json (JSON Lines, UTC)",
    "csv": "csv (UTC)",
}


def _output_option(choices: Sequence[str] = ("table", "json", "csv")) -> argparse.ArgumentParser:
    formats = [_OUTPUT_FORMATS[choice] for choice in choices]
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "-o",
        "--output",
        choices=choices,
        default="table",
        help=f"{', '.join(formats[:-1])} or {formats[-1]}; default: table",
    )
    return options


def _range_options(since: str | None) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    default = f" (default: {since})" if since else " (default: everything Batch remembers)"
    options.add_argument(
        "--since",
        default=since,
        metavar="WHEN",
        help="30m, 24h, 7d, 2w ago, today, yesterday, or an ISO date/time (local time unless "
        f"it has an offset or Z){default}",
    )
    if since:
        options.add_argument("--until", metavar="WHEN", help="same forms as --since (default: now)")
    return options


def _add_query_commands(commands: Any) -> None:
    history, output = _history_options(), _output_option()
    week = _range_options("7d")

    p = commands.add_parser(
        "jobs",
        parents=[history, output, week],
        help="list jobs from the history, newest first",
        description="Jobs from the history table, newest first. --status without --queue reads "
        "the byDay index (one query per day and status); --queue reads byQueueStatus; --name "
        "reads byName; --category filters any of them. Never a Scan.",
    )
    p.add_argument(
        "--queue", type=_queue_name, metavar="NAME", help="only this job queue (its name or ARN)"
    )
    p.add_argument(
        "--status",
        action="extend",
        nargs="+",
        metavar="STATUS",
        help="only these statuses (repeatable, or comma-separated): SUBMITTED PENDING RUNNABLE "
        "SCHEDULED STARTING RUNNING SUCCEEDED FAILED",
    )
    p.add_argument(
        "--category",
        action="extend",
        nargs="+",
        metavar="CATEGORY",
        help="only failures of these categories (e.g. OUT_OF_MEMORY HOST_TERMINATED)",
    )
    p.add_argument("--name", metavar="PREFIX", help="only jobs whose name starts with PREFIX")
    p.add_argument(
        "--limit", type=_count, default=50, metavar="N", help="at most N jobs (default 50; 0: all)"
    )
    p.set_defaults(run=jobs)

    p = commands.add_parser(
        "job",
        parents=[history, output],
        help="show one job: its latest record, attempts and timeline",
        description="The latest record of a job with its attempts and its timeline of "
        "transitions (the table); --output json prints the JobRecord, csv its row.",
    )
    p.add_argument("job_ids", nargs="+", metavar="JOB_ID", help="a job id (or job ARN)")
    p.set_defaults(run=job)

    p = commands.add_parser(
        "failures",
        parents=[history, output, week],
        help="count failed jobs by category, queue or job definition",
        description="Failed jobs over a time range, grouped, largest group first, each with its "
        "most recent failure as an example.",
    )
    p.add_argument(
        "--by",
        choices=("category", "queue", "jobDefinition"),
        default="category",
        help="what to group by (default: category)",
    )
    p.add_argument(
        "--queue", type=_queue_name, metavar="NAME", help="only this job queue (its name or ARN)"
    )
    p.add_argument(
        "--category", action="extend", nargs="+", metavar="CATEGORY", help="only these categories"
    )
    p.set_defaults(run=failures)

    p = commands.add_parser(
        "stats",
        parents=[history, output, week],
        help="per queue: jobs, failure rate, p50/p95 queue wait and run time",
        description="Per queue, over the jobs updated in the time range: how many, how many "
        "succeeded and failed (failure rate = failed / finished), and the p50/p95 (nearest "
        "rank) of queue wait (created → first start) and run time (of finished jobs). Array and "
        "multi-node parents are left out; their children and nodes count one by one.",
    )
    p.add_argument(
        "--queue", type=_queue_name, metavar="NAME", help="only this job queue (its name or ARN)"
    )
    p.set_defaults(run=stats)

    p = commands.add_parser(
        "backfill",
        parents=[history, _output_option(("table", "json")), _range_options(None)],
        help="load the jobs AWS Batch still remembers (about 7 days) into the history",
        description="ListJobs for every status of every queue (or of --queue), DescribeJobs "
        "100 at a time, then the enricher's normaliser and conditional store. Idempotent: a job "
        "the history holds in the same or a newer state is left alone. A job that vanishes "
        "between ListJobs and DescribeJobs is stored from its ListJobs summary (enrichment "
        "NOT_FOUND). Sends no alerts. Progress goes to stderr.",
    )
    p.add_argument(
        "--queue",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="only these job queues (names or ARNs; default: every queue of the region)",
    )
    p.add_argument(
        "--rate",
        type=_backfill_rate,
        default=10.0,
        metavar="N",
        help="at most N Batch API calls a second (default 10, at most 40): the account's "
        "Batch API rate is shared with everything else",
    )
    p.add_argument(
        "--children",
        action="store_true",
        help="also list the children of array jobs and the nodes of multi-node jobs "
        "(one ListJobs per status per parent)",
    )
    p.add_argument(
        "--retention-days",
        type=_retention_days,
        default=90,
        metavar="DAYS",
        help="keep backfilled jobs this long, 1 to 3650: the stack's RetentionDays (default 90)",
    )
    p.add_argument(
        "--allow", action="append", metavar="NAME", help="a variable name never to redact"
    )
    p.set_defaults(run=backfill)


def in_range(
    text: str,
    convert: Callable[[str], _Number],
    low: float,
    high: float,
    problem: str,
    *,
    above: bool = False,
) -> _Number:
    """An argparse type's check: `convert(text)` from `low` (excluded when `above`) to `high`,
    else `problem`. Comparisons refuse nan, which would slip past `value < low`."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not ((low < value) if above else (low <= value)) or not value <= high:
        raise argparse.ArgumentTypeError(problem)
    return value


def _count(text: str) -> int:
    return in_range(text, int, 0, math.inf, "must be 0 or more")


def _port(text: str) -> int:
    return in_range(text, int, 0, 65535, "must be a port, 1 to 65535 (0: a free one)")


def _queue_name(text: str) -> str:
    # The history keys jobs by queue name; the console and the CLI show queues by ARN too.
    from batchlens.records import queue_name

    return queue_name(text)


def _backfill_rate(text: str) -> float:
    from batchlens.backfill import MAX_RATE

    problem = f"must be above 0 and at most {MAX_RATE:g} calls a second"
    return in_range(text, float, 0, MAX_RATE, problem, above=True)


def _retention_days(text: str) -> int:
    # RetentionDays' range in the template and the settings: 0 would write items whose TTL has
    # already passed, which no query shows and a later backfill counts as unchanged.
    from batchlens.events import RETENTION_DAYS_MAX

    problem = f"must be a whole number of days from 1 to {RETENTION_DAYS_MAX}"
    return in_range(text, int, 1, RETENTION_DAYS_MAX, problem)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchlens",
        description="Observability for AWS Batch jobs: enriched history and actionable alerts.",
    )
    parser.add_argument("--version", action="version", version=f"batchlens {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "explain",
        help="normalise AWS Batch events offline and print one JobRecord JSON per event",
        description="Normalise EventBridge events from AWS Batch into JobRecords (schema v1) "
        "without calling AWS (enrichment EVENT_ONLY). Each FILE holds one event, a JSON list "
        "of events, or an SQS event; '-' reads standard input.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--pretty", action="store_true", help="indent the JSON")
    p.add_argument(
        "--allow",
        action="append",
        metavar="NAME",
        help="a variable name never to redact (repeatable), like the RedactAllowlist parameter",
    )
    p.set_defaults(run=explain)

    p = commands.add_parser(
        "demo",
        help="run the real pipeline against a local AWS stand-in (moto on loopback)",
        description="Start moto's server on 127.0.0.1, create the stack's resources from "
        "template.yaml, send sample events through EventBridge → SQS → the real handler → "
        "DynamoDB/SNS, and print the alerts and the failed jobs read back from the table.",
    )
    p.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the local stack running for queries (stop it with `batchlens demo --stop`)",
    )
    p.add_argument("--stop", action="store_true", help="stop a stack left running")
    p.add_argument(
        "--port", type=_port, default=0, help="port for the local server (default: free)"
    )
    p.set_defaults(run=demo)
    _add_query_commands(commands)

    from batchlens import preview  # alert rendering lives in its own module

    preview.add_command(commands)

    from batchlens import redrive  # moving the dead-letter queue back lives in its own module

    redrive.add_command(commands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    out, err, inp = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args, out, err, inp)
    except CliError as exc:
        print(f"batchlens: {exc}", file=err)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `batchlens jobs … | head`: the reader has all it wanted.
        if out is sys.stdout:
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
