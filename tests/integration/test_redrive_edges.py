"""`batchlens redrive` at its edges: SQS answered by botocore's Stubber (move tasks, which moto
lacks) or by moto (queues and redrive policies)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.stub import Stubber

from batchlens import access, cli, redrive
from batchlens.redrive import RedriveError, Route

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
DLQ_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/dlq"
ROUTE = Route(
    DLQ_URL,
    f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq",
    f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/events",
    f"arn:aws:sqs:us-east-1:{ACCOUNT}:events",
)
DEPTH = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@pytest.fixture
def sqs() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def redriven(client: Any) -> tuple[int, str]:
    """`redrive` of ROUTE without naps: its exit status, and what it printed."""
    out = io.StringIO()
    code = redrive.redrive(client, ROUTE, out, interval=0, sleep=lambda _: None)
    return code, out.getvalue()


def no_task(stubber: Stubber) -> None:
    stubber.add_response(
        "list_message_move_tasks", {"Results": []}, {"SourceArn": ROUTE.source_arn, "MaxResults": 1}
    )


def depth(stubber: Stubber, visible: int, in_flight: int = 0) -> None:
    stubber.add_response(
        "get_queue_attributes",
        {"Attributes": {DEPTH[0]: str(visible), DEPTH[1]: str(in_flight), DEPTH[2]: "0"}},
        {"QueueUrl": DLQ_URL, "AttributeNames": list(DEPTH)},
    )


def task(
    stubber: Stubber,
    status: str,
    moved: int,
    to_move: int = 11,
    *,
    started_ms: int | None = None,
    handle: str | None = None,
    destination: str | None = ROUTE.destination_arn,
) -> None:
    result: dict[str, Any] = {
        "Status": status,
        "SourceArn": ROUTE.source_arn,
        "ApproximateNumberOfMessagesMoved": moved,
        "ApproximateNumberOfMessagesToMove": to_move,
    }
    if destination is not None:  # SQS lists none for a task back to the messages' sources
        result["DestinationArn"] = destination
    if started_ms is not None:
        result["StartedTimestamp"] = started_ms
    if handle is not None:  # SQS lists a task's handle only while it runs
        result["TaskHandle"] = handle
    stubber.add_response(
        "list_message_move_tasks",
        {"Results": [result]},
        {"SourceArn": ROUTE.source_arn, "MaxResults": 1},
    )


def started(stubber: Stubber) -> None:
    stubber.add_response(
        "start_message_move_task",
        {"TaskHandle": "h-1"},
        {"SourceArn": ROUTE.source_arn, "DestinationArn": ROUTE.destination_arn},
    )


def previous_task(stubber: Stubber, times: int = 1) -> None:
    """SQS listing the earlier move task, which finished after 5 of its messages, `times` times."""
    for _ in range(times):
        task(stubber, "COMPLETED", 5, 5, started_ms=1_000)


def started_after_previous(stubber: Stubber) -> None:
    """An earlier move task that finished, 11 dead letters, and the new task h-1 started."""
    previous_task(stubber)
    depth(stubber, 11)
    started(stubber)


def test_a_single_dead_letter_is_redriven(sqs: tuple[Any, Stubber]) -> None:  # R3
    client, stubber = sqs
    no_task(stubber)
    depth(stubber, 1)
    started(stubber)
    out = io.StringIO()
    assert redrive.redrive(client, ROUTE, out, wait=False) == 0
    assert out.getvalue().startswith("Moving about 1 messages from dlq to events")


def test_messages_in_flight_count_as_waiting(sqs: tuple[Any, Stubber]) -> None:  # R4
    client, stubber = sqs
    no_task(stubber)
    depth(stubber, 0, in_flight=2)
    started(stubber)
    out = io.StringIO()
    assert redrive.redrive(client, ROUTE, out, wait=False) == 0
    assert "Moving about 2 messages" in out.getvalue()


def test_a_cancelled_task_is_not_reported_as_done(sqs: tuple[Any, Stubber]) -> None:  # R9
    client, stubber = sqs
    no_task(stubber)
    depth(stubber, 11)
    started(stubber)
    task(stubber, "RUNNING", 4)
    task(stubber, "CANCELLED", 6)
    code, printed = redriven(client)
    assert code == 1
    assert printed.splitlines()[-1] == "The move task ended CANCELLED after 6 messages."


def test_unchanged_progress_is_printed_once(sqs: tuple[Any, Stubber]) -> None:  # R14
    client, stubber = sqs
    no_task(stubber)
    depth(stubber, 11)
    started(stubber)
    task(stubber, "RUNNING", 4)
    task(stubber, "RUNNING", 4)
    task(stubber, "COMPLETED", 11)
    code, printed = redriven(client)
    assert code == 0
    assert printed.splitlines().count("  RUNNING: 4/11 messages moved") == 1


@pytest.mark.parametrize(
    ("destination", "where"),
    [
        (f"arn:aws:sqs:us-east-1:{ACCOUNT}:elsewhere", "elsewhere"),
        (None, "their source queues"),
    ],
)
def test_a_task_already_moving_the_dead_letters_elsewhere_says_where(
    sqs: tuple[Any, Stubber], destination: str | None, where: str
) -> None:
    # Given a move task out of the DLQ that someone else started, to another queue or back to
    # the messages' sources, not to ROUTE's `events`
    client, stubber = sqs
    task(stubber, "RUNNING", 4, started_ms=2_000, handle="h-other", destination=destination)
    task(stubber, "COMPLETED", 11, started_ms=2_000, destination=destination)

    # When redrive follows it
    code, printed = redriven(client)

    # Then it says where that task moves them, and never that they are back in `events`
    assert code == 0
    lines = printed.splitlines()
    assert lines[0].startswith(f"A move task out of dlq to {where} (not events) is already")
    assert lines[-1] == f"Done: 11 messages are back in {where}."


def test_the_previous_task_listed_after_a_start_is_not_taken_for_the_new_one(
    sqs: tuple[Any, Stubber],
) -> None:
    # Given an earlier move task that finished after 5 messages
    client, stubber = sqs
    started_after_previous(stubber)
    # When SQS still lists that task first, right after the new one started
    previous_task(stubber)
    task(stubber, "RUNNING", 4, started_ms=2_000, handle="h-1")
    task(stubber, "COMPLETED", 11, started_ms=2_000)
    code, printed = redriven(client)

    # Then the new task is followed to its own end, and the old one is never reported
    assert code == 0
    assert printed.splitlines()[1:] == [
        "  RUNNING: 4/11 messages moved",
        "  COMPLETED: 11/11 messages moved",
        "Done: 11 messages are back in events.",
    ]


def test_a_task_not_listed_yet_right_after_its_start_is_waited_for(
    sqs: tuple[Any, Stubber],
) -> None:
    # Given a first move task, which SQS does not list for a moment after it started
    client, stubber = sqs
    no_task(stubber)
    depth(stubber, 11)
    started(stubber)
    no_task(stubber)
    task(stubber, "COMPLETED", 11, started_ms=2_000)

    # When it is followed; then it is waited for, not reported missing
    code, printed = redriven(client)
    assert code == 0
    assert printed.splitlines()[-1] == "Done: 11 messages are back in events."


@pytest.mark.parametrize(
    ("interval", "nap"), [(0, 1.0), (0.5, 1.0), (2, 2.0), (5, 5.0), (3600, 5.0)]
)
def test_a_task_sqs_never_lists_is_one_clear_error_after_a_minute(
    sqs: tuple[Any, Stubber], interval: float, nap: float
) -> None:
    # Given a started task that SQS never lists (only the earlier, finished one)
    client, stubber = sqs
    started_after_previous(stubber)
    previous_task(stubber, int(redrive.UNLISTED_GRACE_SECONDS / nap) + 1)
    naps: list[float] = []

    # When it is followed at any --interval; then it looks every 1 to 5 s (not flat out at 0, not
    # hourly at 3600) and gives up after a minute of naps, naming the task
    with pytest.raises(
        RedriveError, match=r"^SQS does not list move task h-1 out of dlq after 60 s;"
    ):
        redrive.redrive(client, ROUTE, io.StringIO(), interval=interval, sleep=naps.append)
    assert set(naps) == {nap}
    assert sum(naps) == redrive.UNLISTED_GRACE_SECONDS
    stubber.assert_no_pending_responses()


def test_a_task_sqs_stops_listing_is_said_to_be_no_longer_listed(
    sqs: tuple[Any, Stubber],
) -> None:
    # Given a started task that SQS lists once, running, and then no more (only the earlier one)
    client, stubber = sqs
    started_after_previous(stubber)
    task(stubber, "RUNNING", 4, started_ms=2_000, handle="h-1")
    previous_task(stubber, int(redrive.UNLISTED_GRACE_SECONDS / 5) + 1)

    # When it is followed; then the error says the task was seen, then lost
    with pytest.raises(RedriveError, match=r"^SQS no longer lists move task h-1 out of dlq after "):
        redrive.redrive(client, ROUTE, io.StringIO(), interval=5, sleep=lambda _: None)
    stubber.assert_no_pending_responses()


def start_refused(stubber: Stubber, code: str, status: int = 400) -> None:
    stubber.add_client_error(
        "start_message_move_task",
        service_error_code=code,
        service_message="refused",
        http_status_code=status,
        expected_params={"SourceArn": ROUTE.source_arn, "DestinationArn": ROUTE.destination_arn},
    )


def start_after_lost_answer(stubber: Stubber, *, after_previous: bool) -> None:
    """11 dead letters and a start refused as boto3's retry of one whose answer was lost is
    (SQS does not document the code; any refusal takes the same path)."""
    if after_previous:
        previous_task(stubber)
    else:
        no_task(stubber)
    depth(stubber, 11)
    start_refused(stubber, "AWS.SimpleQueueService.UnsupportedOperation")


def test_a_task_started_by_an_attempt_whose_answer_was_lost_is_followed(
    sqs: tuple[Any, Stubber],
) -> None:
    # Given a start whose first attempt started the task but lost its answer, so that boto3's
    # retry was refused
    client, stubber = sqs
    start_after_lost_answer(stubber, after_previous=True)
    # When SQS now lists a new task, running, and it finishes
    task(stubber, "RUNNING", 0, started_ms=2_000, handle="h-9")
    task(stubber, "RUNNING", 4, started_ms=2_000, handle="h-9")
    task(stubber, "COMPLETED", 11, started_ms=2_000)
    code, printed = redriven(client)

    # Then that task is followed to its end instead of the command failing
    assert code == 0
    assert printed.splitlines() == [
        "Starting the move task failed (AWS.SimpleQueueService.UnsupportedOperation), but a move "
        "task from dlq to events has started since (RUNNING: 0/11 messages moved).",
        "  RUNNING: 4/11 messages moved",
        "  COMPLETED: 11/11 messages moved",
        "Done: 11 messages are back in events.",
    ]


@pytest.mark.parametrize(("status", "expected"), [("COMPLETED", 0), ("FAILED", 1)])
def test_a_task_begun_by_a_lost_start_and_already_finished_is_reported(
    sqs: tuple[Any, Stubber], status: str, expected: int
) -> None:
    # Given a refused start whose lost first attempt began a task that finished meanwhile
    client, stubber = sqs
    start_after_lost_answer(stubber, after_previous=True)
    task(stubber, status, 11, started_ms=2_000)

    # When redriving; then that task's own outcome is the command's
    code, printed = redriven(client)
    assert code == expected
    ending = "Done: 11" if expected == 0 else "The move task ended FAILED after 11 messages"
    assert printed.splitlines()[-1].startswith(ending)


@pytest.mark.parametrize("listed", ["none", "previous"])
def test_a_refused_start_that_began_no_task_is_the_error_it_was(
    sqs: tuple[Any, Stubber], listed: str
) -> None:
    # Given a start SQS refuses, after which it lists no task, or only the earlier one
    client, stubber = sqs
    start_after_lost_answer(stubber, after_previous=listed == "previous")
    if listed == "none":
        no_task(stubber)
    else:
        previous_task(stubber)
    out = io.StringIO()

    # When redriving; then the refusal is raised as it came, and nothing claims a task
    with pytest.raises(ClientError, match="UnsupportedOperation"):
        redrive.redrive(client, ROUTE, out, interval=0, sleep=lambda _: None)
    assert out.getvalue() == ""


def test_progress_shown_when_the_task_is_found_is_not_printed_again(
    sqs: tuple[Any, Stubber],
) -> None:
    client, stubber = sqs
    start_after_lost_answer(stubber, after_previous=False)
    task(stubber, "RUNNING", 3, started_ms=2_000, handle="h-7")
    task(stubber, "RUNNING", 3, started_ms=2_000, handle="h-7")
    task(stubber, "COMPLETED", 11, started_ms=2_000)
    code, printed = redriven(client)
    assert code == 0
    assert printed.count("3/11 messages moved") == 1


def test_a_task_to_another_destination_is_not_taken_for_the_one_asked_for(
    sqs: tuple[Any, Stubber],
) -> None:
    # Given a refused start, after which SQS lists a new task that moves the dead letters to a
    # queue other than the one asked for (another operator's)
    client, stubber = sqs
    start_after_lost_answer(stubber, after_previous=True)
    elsewhere = "arn:aws:sqs:us-east-1:123456789012:elsewhere"
    task(stubber, "COMPLETED", 11, started_ms=2_000, destination=elsewhere)
    out = io.StringIO()

    # When redriving; then the refusal stands, and that task is not reported as this move
    with pytest.raises(ClientError, match="UnsupportedOperation"):
        redrive.redrive(client, ROUTE, out, interval=0, sleep=lambda _: None)
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDenied", 400),
        ("KMS.AccessDeniedException", 400),
        ("AuthorizationError", 400),
        ("ExpiredToken", 403),
    ],
)
def test_a_start_refused_for_want_of_permission_is_never_covered_by_another_task(
    sqs: tuple[Any, Stubber], code: str, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a start refused because the caller may not start one (by its code, or any 403),
    # while another operator's task to the same queue happens to be running
    client, stubber = sqs
    previous_task(stubber)
    depth(stubber, 11)
    start_refused(stubber, code, status)
    looks: list[Route] = []
    look = redrive.latest_task

    def counted(client: Any, route: Route) -> redrive.Progress | None:
        looks.append(route)
        return look(client, route)

    monkeypatch.setattr(redrive, "latest_task", counted)

    # When redriving; then the refusal is raised without asking SQS for tasks again, so a
    # missing permission is never hidden
    with pytest.raises(ClientError, match=code.replace(".", r"\.")):
        redrive.redrive(client, ROUTE, io.StringIO(), interval=0, sleep=lambda _: None)
    assert len(looks) == 1  # the look before the start only


@pytest.mark.parametrize(
    "error",
    [ReadTimeoutError(endpoint_url=DLQ_URL), ConnectTimeoutError(endpoint_url=DLQ_URL)],
    ids=["read-timeout", "connect-timeout"],
)
def test_a_start_that_timed_out_on_every_attempt_follows_the_task_it_began(
    sqs: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    # Given a start whose every attempt timed out (the last ones perhaps before connecting),
    # though one of them started the task
    client, stubber = sqs
    no_task(stubber)
    depth(stubber, 11)

    def timed_out(*_: Any) -> str:
        raise error

    monkeypatch.setattr(redrive, "start", timed_out)
    # When SQS lists that task running, then finished
    task(stubber, "RUNNING", 3, started_ms=2_000, handle="h-7")
    task(stubber, "COMPLETED", 11, started_ms=2_000)
    code, printed = redriven(client)

    # Then it is followed to its end, and the first line says why
    assert code == 0
    assert printed.splitlines()[0] == (
        f"Starting the move task failed ({type(error).__name__}), but a move task from dlq to "
        "events has started since (RUNNING: 3/11 messages moved)."
    )
    assert printed.splitlines()[-1] == "Done: 11 messages are back in events."


def test_a_cancelling_task_found_after_a_lost_start_is_followed_to_its_end(
    sqs: tuple[Any, Stubber],
) -> None:
    # Given a lost start whose task someone is already cancelling (SQS lists no handle then)
    client, stubber = sqs
    start_after_lost_answer(stubber, after_previous=True)
    task(stubber, "CANCELLING", 4, started_ms=2_000)
    task(stubber, "CANCELLED", 6, started_ms=2_000)

    # When redriving; then it is followed until it ends, and the command fails as it did
    code, printed = redriven(client)
    assert code == 1
    assert printed.splitlines()[-1] == "The move task ended CANCELLED after 6 messages."


def test_the_starts_own_error_stands_when_sqs_cannot_be_asked_again(
    sqs: tuple[Any, Stubber],
) -> None:
    client, stubber = sqs
    start_after_lost_answer(stubber, after_previous=True)
    stubber.add_client_error("list_message_move_tasks", service_error_code="RequestThrottled")
    with pytest.raises(ClientError, match="UnsupportedOperation"):
        redrive.redrive(client, ROUTE, io.StringIO(), interval=0, sleep=lambda _: None)


def test_no_wait_after_a_lost_start_returns_once_the_task_is_found(
    sqs: tuple[Any, Stubber],
) -> None:
    client, stubber = sqs
    start_after_lost_answer(stubber, after_previous=False)
    task(stubber, "RUNNING", 3, started_ms=2_000, handle="h-7")
    out = io.StringIO()
    assert redrive.redrive(client, ROUTE, out, wait=False) == 0
    assert "has started since (RUNNING: 3/11 messages moved)" in out.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("Not waiting; follow it with")


def test_a_stack_whose_queue_is_not_created_yet_is_one_clear_error(
    sqs: tuple[Any, Stubber],
) -> None:  # R12b
    client, _ = sqs
    cloudformation = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(cloudformation) as cfn:
        cfn.add_response(
            "describe_stack_resource",
            {
                "StackResourceDetail": {
                    "LogicalResourceId": "DeadLetterQueue",
                    "ResourceType": "AWS::SQS::Queue",
                    "LastUpdatedTimestamp": "2025-01-01T00:00:00Z",
                    "ResourceStatus": "CREATE_IN_PROGRESS",
                }
            },
            {"StackName": "s", "LogicalResourceId": "DeadLetterQueue"},
        )
        with pytest.raises(RedriveError, match=r"no DeadLetterQueue yet \(CREATE_IN_PROGRESS\)"):
            redrive.stack_route(cloudformation, client, "s")


# --- moto: queues and redrive policies -------------------------------------------------------


def queues(session: boto3.Session, *sources: str) -> tuple[str, dict[str, str]]:
    sqs = session.client("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    policy = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": 5})
    urls = {
        name: sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
        for name in sources
    }
    return dlq, urls


def test_a_dead_letter_queue_of_two_queues_needs_a_destination(
    aws_session: boto3.Session,
) -> None:  # R10
    dlq, _ = queues(aws_session, "events", "other")
    with pytest.raises(RedriveError, match="dead-letter queue of 2 queues"):
        redrive.queue_route(aws_session.client("sqs"), dlq)


def test_the_destination_named_is_the_one_used(aws_session: boto3.Session) -> None:  # R11
    dlq, _ = queues(aws_session, "events")
    replay = aws_session.client("sqs").create_queue(QueueName="replay")["QueueUrl"]
    route = redrive.queue_route(aws_session.client("sqs"), dlq, replay)
    assert route.destination_name == "replay"


def test_stack_with_a_destination_queue_is_refused(
    aws_session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:  # R13
    monkeypatch.setattr(access, "boto3_session", lambda profile, region: aws_session)
    out, err = io.StringIO(), io.StringIO()
    argv = ["redrive", "--stack", "s", "--to-queue-url", "https://sqs/x", "--dry-run"]
    assert cli.main(argv, stdout=out, stderr=err) == 1
    assert "--to-queue-url goes with --queue-url" in err.getvalue()


@pytest.mark.parametrize(("rate", "ok"), [("1", True), ("500", True), ("0", False), ("501", False)])
def test_rate_is_one_to_sqs_maximum_of_500(rate: str, ok: bool) -> None:  # R6, R7
    parser = cli.build_parser()
    argv = ["redrive", "--stack", "s", "--rate", rate]
    if ok:
        assert parser.parse_args(argv).rate == int(rate)
    else:
        with pytest.raises(SystemExit):
            parser.parse_args(argv)


@pytest.mark.parametrize(
    ("interval", "ok"), [("0", True), ("2.5", True), ("-1", False), ("nan", False), ("3601", False)]
)
def test_interval_is_checked_before_any_task_starts(interval: str, ok: bool) -> None:
    # A negative or nan interval reached time.sleep after the move task had started, and the
    # command died with a traceback while the task ran on
    argv = ["redrive", "--stack", "s", "--interval", interval]
    if ok:
        assert cli.build_parser().parse_args(argv).interval == float(interval)
    else:
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(argv)


def test_a_stand_in_answering_a_web_page_is_one_line(sqs: tuple[Any, Stubber]) -> None:
    # Given an endpoint that answers ListMessageMoveTasks with a web page, as botocore parses it
    # (moto's server has no message-move tasks: a Flask 500 page)
    client, stubber = sqs
    page = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n</html>\n"
    stubber.add_client_error(
        "list_message_move_tasks",
        service_error_code="500",
        service_message=page,
        http_status_code=500,
        expected_params={"SourceArn": ROUTE.source_arn, "MaxResults": 1},
    )

    # When redriven, with the CLI's translation of AWS errors
    with pytest.raises(access.AccessError) as caught, access.translated("redrive"):
        redrive.redrive(client, ROUTE, io.StringIO(), dry_run=True)

    # Then one line names the call and the likely cause, without the page
    assert str(caught.value) == (
        "redrive: ListMessageMoveTasks failed: 500: the endpoint answered with a web page; "
        "does it implement ListMessageMoveTasks?"
    )
