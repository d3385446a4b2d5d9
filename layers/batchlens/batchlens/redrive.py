"""`batchlens redrive`: move the events in the dead-letter queue back to the event queue.

SQS does the moving (StartMessageMoveTask, the console's "Start DLQ redrive"): the messages go from
the stack's `DeadLetterQueue` to its `EventQueue` at the rate asked for, and this module follows the
task with ListMessageMoveTasks until it finishes. The destination is always named explicitly: the
dead-letter queue also holds events EventBridge could not deliver, which have no source queue SQS
could send them back to. CLI-only; the Lambda never imports this module.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

    from batchlens.access import Connection

#: Logical ids in template.yaml.
DEAD_LETTER_QUEUE_ID = "DeadLetterQueue"
EVENT_QUEUE_ID = "EventQueue"
#: SQS's bounds for MaxNumberOfMessagesPerSecond.
MAX_RATE = 500
FINISHED = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
#: How long `follow` waits for SQS to list a task just started before it gives up on it, and how
#: often it looks meanwhile (whatever --interval says: 0 would poll SQS flat out, an hour would
#: wait 12 hours).
UNLISTED_GRACE_SECONDS = 60.0
UNLISTED_POLL_SECONDS = (1.0, 5.0)
_DEPTH_ATTRIBUTES: tuple[QueueAttributeNameType, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class RedriveError(Exception):
    """Nothing was moved, for a reason a person can act on."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where messages come from (a dead-letter queue) and where they go back to."""

    source_url: str
    source_arn: str
    destination_url: str
    destination_arn: str

    @property
    def source_name(self) -> str:
        return self.source_arn.rsplit(":", 1)[-1]

    @property
    def destination_name(self) -> str:
        return self.destination_arn.rsplit(":", 1)[-1]


@dataclass(frozen=True, slots=True)
class Progress:
    """One ListMessageMoveTasks result: the state of the latest move task of a queue."""

    status: str
    moved: int
    to_move: int | None
    failure_reason: str | None = None
    #: When SQS started the task (epoch milliseconds): what tells a finished task from another.
    started_ms: int | None = None
    #: SQS lists a task's handle only while it is RUNNING.
    handle: str | None = None
    #: Where the task moves messages (None: back to their sources; batchlens always names one).
    destination_arn: str | None = None

    @classmethod
    def of(cls, result: Mapping[str, Any]) -> Progress:
        return cls(
            status=str(result["Status"]),
            moved=int(result.get("ApproximateNumberOfMessagesMoved", 0)),
            to_move=result.get("ApproximateNumberOfMessagesToMove"),
            failure_reason=result.get("FailureReason"),
            started_ms=result.get("StartedTimestamp"),
            handle=result.get("TaskHandle"),
            destination_arn=result.get("DestinationArn"),
        )

    def is_task(self, handle: str, previous: Progress | None) -> bool:
        """Is this the task started as `handle`, not `previous` (the latest task before it)?"""
        if self.handle is not None:
            return self.handle == handle
        if previous is None or previous.started_ms is None:
            return True
        return self.started_ms != previous.started_ms

    def describe(self) -> str:
        of = f"/{self.to_move}" if self.to_move is not None else ""
        return f"{self.status}: {self.moved}{of} messages moved"


def _queue_arn(sqs: SQSClient, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def stack_route(cloudformation: CloudFormationClient, sqs: SQSClient, stack: str) -> Route:
    """The stack's DeadLetterQueue → EventQueue (a queue's physical id is its URL)."""

    def url(logical_id: str) -> str:
        detail = cloudformation.describe_stack_resource(
            StackName=stack, LogicalResourceId=logical_id
        )["StackResourceDetail"]
        physical = detail.get("PhysicalResourceId")
        if not physical:
            raise RedriveError(
                f"stack {stack!r} has no {logical_id} yet ({detail['ResourceStatus']})"
            )
        return physical

    source, destination = url(DEAD_LETTER_QUEUE_ID), url(EVENT_QUEUE_ID)
    return Route(source, _queue_arn(sqs, source), destination, _queue_arn(sqs, destination))


def queue_route(sqs: SQSClient, source_url: str, destination_url: str | None = None) -> Route:
    """A dead-letter queue back to `destination_url`, or else to the one queue it serves."""
    if destination_url is None:
        sources = sqs.list_dead_letter_source_queues(QueueUrl=source_url).get("queueUrls", [])
        if len(sources) != 1:
            found = ", ".join(sources) if sources else "none"
            raise RedriveError(
                f"{source_url} is the dead-letter queue of {len(sources)} queues ({found}); "
                "name the destination with --to-queue-url"
            )
        destination_url = sources[0]
    return Route(
        source_url,
        _queue_arn(sqs, source_url),
        destination_url,
        _queue_arn(sqs, destination_url),
    )


def depth(sqs: SQSClient, url: str) -> int:
    """Messages in a queue: waiting, in flight and delayed (SQS's approximations)."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(_DEPTH_ATTRIBUTES))
    values = attributes.get("Attributes", {})
    return sum(int(values.get(name) or 0) for name in _DEPTH_ATTRIBUTES)


def latest_task(sqs: SQSClient, route: Route) -> Progress | None:
    """The most recent move task out of the dead-letter queue, if there was one."""
    results = sqs.list_message_move_tasks(SourceArn=route.source_arn, MaxResults=1).get(
        "Results", []
    )
    return Progress.of(results[0]) if results else None


def start(sqs: SQSClient, route: Route, rate: int | None = None) -> str:
    """Start moving every message of the dead-letter queue back; returns the task handle."""
    kwargs: dict[str, Any] = {
        "SourceArn": route.source_arn,
        "DestinationArn": route.destination_arn,
    }
    if rate is not None:
        kwargs["MaxNumberOfMessagesPerSecond"] = rate
    return sqs.start_message_move_task(**kwargs)["TaskHandle"]


def follow(
    sqs: SQSClient,
    route: Route,
    out: TextIO,
    *,
    started: tuple[str, Progress | None] | None = None,
    shown: Progress | None = None,
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Progress:
    """Print the task's progress whenever it changes, until it finishes.

    `started` is (the handle of a task just started, the latest task before it): right after a
    start SQS may still list the earlier task, or none, for a moment; those listings are skipped.
    `shown` is progress already printed, which is not printed again.
    """
    waited = 0.0  # the naps taken while the started task was not listed
    nap = min(max(interval, UNLISTED_POLL_SECONDS[0]), UNLISTED_POLL_SECONDS[1])
    while True:
        progress = latest_task(sqs, route)
        if started is not None and (progress is None or not progress.is_task(*started)):
            if waited >= UNLISTED_GRACE_SECONDS:
                lists = "no longer lists" if shown is not None else "does not list"
                raise RedriveError(
                    f"SQS {lists} move task {started[0]} out of {route.source_name} after "
                    f"{waited:g} s; see `aws sqs list-message-move-tasks --source-arn "
                    f"{route.source_arn}`"
                )
            sleep(nap)
            waited += nap
            continue
        if progress is None:
            raise RedriveError(f"SQS reports no move task for {route.source_name}")
        if progress != shown:
            print(f"  {progress.describe()}", file=out, flush=True)
            shown = progress
        if progress.status in FINISHED:
            return progress
        sleep(interval)


def redrive(
    sqs: SQSClient,
    route: Route,
    out: TextIO,
    *,
    rate: int | None = None,
    wait: bool = True,
    dry_run: bool = False,
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Move the dead-letter queue back to its queue, showing progress; the exit status."""
    running = latest_task(sqs, route)
    if running is not None and running.status not in FINISHED:
        # SQS runs one move task per queue at a time, and a CANCELLING one is still that task.
        # It may move the messages elsewhere than asked (another operator's task): say where.
        to = _destination_name(running)
        elsewhere = running.destination_arn != route.destination_arn
        where = f" to {to} (not {route.destination_name})" if elsewhere else ""
        # A running task keeps the rate it was started with: say the one asked for is not used.
        unpaced = f"; --rate {rate} is not applied to it" if rate is not None else ""
        if dry_run or not wait:
            print(
                f"A move task out of {route.source_name}{where} is already under way "
                f"({running.describe()}); not starting another{unpaced}.",
                file=out,
            )
            return 0
        print(
            f"A move task out of {route.source_name}{where} is already under way; "
            f"following it{unpaced}.",
            file=out,
        )
        return _outcome(follow(sqs, route, out, interval=interval, sleep=sleep), route, out)

    waiting = depth(sqs, route.source_url)
    if waiting == 0:
        print(f"{route.source_name} is empty: nothing to redrive.", file=out)
        return 0
    pace = f" at most {rate} a second" if rate else ""
    if dry_run:
        print(
            f"Would move about {waiting} messages from {route.source_name} "
            f"to {route.destination_name}{pace}.",
            file=out,
        )
        return 0
    shown: Progress | None = None
    handle: str | None
    try:
        handle = start(sqs, route, rate)
    except (ClientError, HTTPClientError, BotoConnectionError) as exc:
        begun = _begun_anyway(sqs, route, running, exc)
        if begun is None:
            raise
        print(
            f"Starting the move task failed ({_error_name(exc)}), but a move task from "
            f"{route.source_name} to {route.destination_name} has started since "
            f"({begun.describe()}).",
            file=out,
            flush=True,
        )
        if begun.status in FINISHED:
            return _outcome(begun, route, out)
        handle, shown = begun.handle, begun
    else:
        print(
            f"Moving about {waiting} messages from {route.source_name} "
            f"to {route.destination_name}{pace} (task {handle}).",
            file=out,
            flush=True,
        )
    if not wait:
        print(
            "Not waiting; follow it with `aws sqs list-message-move-tasks "
            f"--source-arn {route.source_arn}`.",
            file=out,
        )
        return 0
    # A task found after an error but no longer running (cancelling) lists no handle.
    started = (handle, running) if handle is not None else None
    progress = follow(sqs, route, out, started=started, shown=shown, interval=interval, sleep=sleep)
    return _outcome(progress, route, out)


#: Refusals that say the caller may not start a task at all: no task can have begun (with any
#: HTTP 403).
_DENIED = frozenset({"AuthorizationError", "InvalidClientTokenId", "UnrecognizedClientException"})


def _begun_anyway(
    sqs: SQSClient, route: Route, previous: Progress | None, error: Exception
) -> Progress | None:
    """The move task a StartMessageMoveTask that answered `error` began all the same, if any.

    boto3 retries a StartMessageMoveTask whose answer was lost (a read timeout, a dropped
    connection). If the lost attempt had started the task, SQS refuses the retry, since a queue
    has one move task at a time, and the task runs on unseen. A task to the same destination
    newer than `previous` (the latest before the start, which was not running) is that one, or
    one another operator just started: either way it is the move asked for. SQS is asked once:
    the retries' own timeouts have given it time to list the task.
    """
    code = _error_name(error)
    if "AccessDenied" in code or code in _DENIED or _http_status(error) == 403:
        return None
    try:
        now = latest_task(sqs, route)
    except (ClientError, BotoCoreError):
        return None  # the start's own error is the one to report
    if now is None or now.destination_arn != route.destination_arn:
        return None
    # SQS lists a task's handle only while it runs, and `previous` was not running.
    if now.handle is not None or previous is None or now.started_ms != previous.started_ms:
        return now
    return None


def _error_name(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


def _http_status(exc: Exception) -> int | None:
    if isinstance(exc, ClientError):
        return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


def _destination_name(progress: Progress) -> str:
    """Where the task moves messages: SQS lists no destination for a task back to the sources."""
    if progress.destination_arn is None:
        return "their source queues"
    return progress.destination_arn.rsplit(":", 1)[-1]


def _outcome(progress: Progress, route: Route, out: TextIO) -> int:
    if progress.status == "COMPLETED":
        to = _destination_name(progress)
        print(f"Done: {progress.moved} messages are back in {to}.", file=out)
        return 0
    reason = f": {progress.failure_reason}" if progress.failure_reason else ""
    print(
        f"The move task ended {progress.status} after {progress.moved} messages{reason}.", file=out
    )
    return 1


# --- the command ---------------------------------------------------------------------------


def _rate(text: str) -> int:
    from batchlens.cli import in_range

    return in_range(text, int, 1, MAX_RATE, f"must be 1 to {MAX_RATE} messages a second")


def _interval(text: str) -> float:
    from batchlens.cli import in_range

    # nan is refused here: time.sleep would refuse it mid-task
    return in_range(text, float, 0, 3600, "must be 0 to 3600 seconds")


def _sqs_client(connection: Connection) -> SQSClient:
    from botocore.config import Config

    credentials = connection.credentials or {}
    return connection.session.client(
        "sqs",
        region_name=connection.region,
        endpoint_url=connection.endpoint_url,
        aws_access_key_id=credentials.get("aws_access_key_id"),
        aws_secret_access_key=credentials.get("aws_secret_access_key"),
        config=Config(retries={"mode": "standard", "max_attempts": 4}, read_timeout=20),
    )


def command(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """`batchlens redrive`: see `add_command`."""
    from batchlens.access import AccessError, connect, translated
    from batchlens.cli import CliError

    if args.stack and args.to_queue_url:
        raise CliError("--to-queue-url goes with --queue-url; --stack redrives to its EventQueue")
    try:
        connection = connect(
            profile=args.profile,
            region=args.region,
            endpoint_url=args.endpoint_url,
            environ=os.environ,
        )
        with translated("redrive", connection=connection, stack=args.stack):
            sqs = _sqs_client(connection)
            if args.stack:
                route = stack_route(connection.client("cloudformation"), sqs, args.stack)
            else:
                route = queue_route(sqs, args.queue_url, args.to_queue_url)
            return redrive(
                sqs,
                route,
                stdout,
                rate=args.rate,
                wait=not args.no_wait,
                dry_run=args.dry_run,
                interval=args.interval,
            )
    except (AccessError, RedriveError) as exc:
        raise CliError(str(exc)) from exc


def add_command(commands: Any) -> None:
    """Register `redrive` on the CLI's subcommands."""
    p = commands.add_parser(
        "redrive",
        help="move the events in the dead-letter queue back to the event queue",
        description="Move every message of a batchlens stack's dead-letter queue back to its "
        "event queue with SQS's own redrive (StartMessageMoveTask), and show the task's progress "
        "until it finishes. Fix what sent them there first, or they come back.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--stack", metavar="NAME", help="a deployed batchlens stack: its DeadLetterQueue"
    )
    which.add_argument(
        "--queue-url",
        metavar="URL",
        help="a dead-letter queue; its messages go back to the one queue it serves",
    )
    p.add_argument(
        "--to-queue-url",
        metavar="URL",
        help="with --queue-url: where the messages go (default: the queue it is the DLQ of)",
    )
    p.add_argument(
        "--rate",
        type=_rate,
        metavar="N",
        help=f"at most N messages a second (1-{MAX_RATE}; default: as fast as SQS goes)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would move, move nothing")
    p.add_argument("--no-wait", action="store_true", help="start the task and return")
    p.add_argument(
        "--interval",
        type=_interval,
        default=5.0,
        metavar="S",
        help="seconds between progress checks (0-3600, default 5)",
    )
    p.add_argument("--profile", metavar="NAME", help="the AWS profile to use")
    p.add_argument(
        "--region",
        metavar="REGION",
        help="the AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, then the profile's; "
        "us-east-1 for an endpoint on this machine)",
    )
    p.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="an AWS stand-in (default: $BATCHLENS_ENDPOINT_URL)",
    )
    p.set_defaults(run=command)
