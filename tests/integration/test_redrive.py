"""`batchlens redrive` against moto: the stack's DeadLetterQueue → EventQueue, found through
CloudFormation, with the queues created from template.yaml's own definitions.

moto has no SQS message-move tasks (StartMessageMoveTask, ListMessageMoveTasks), so those two calls
are answered by `MoveTasks` below, a botocore `before-call` hook, as botocore's `Stubber` answers
calls: botocore still validates every request against AWS's service model, and the hook validates
its responses against it too. It moves the messages for real, in moto, a few per progress check.
Every other call (CloudFormation, queue attributes, receive/send/delete) is moto's.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.model import OperationModel
from botocore.validate import validate_parameters

from batchlens import access, cli
from batchlens.template import default_template_path, load_template
from tests.conftest import read_event

pytestmark = pytest.mark.integration

QUEUES = ("DeadLetterQueue", "EventQueue")
SQS_URL = "https://sqs.us-east-1.amazonaws.com/"


@dataclass
class Task:
    handle: str
    source_arn: str
    destination_arn: str
    to_move: int
    rate: int | None
    started: int = field(default_factory=lambda: int(time.time() * 1000))
    moved: int = 0
    status: str = "RUNNING"
    failure_reason: str | None = None


class MoveTasks:
    """SQS's message-move tasks, emulated over moto's queues (see the module docstring)."""

    def __init__(self, session: boto3.Session, *, per_check: int = 10) -> None:
        self.sqs = session.client("sqs")
        self.per_check = per_check
        self.tasks: list[Task] = []
        self.fail_after: int | None = None
        session.events.register("before-call.sqs.StartMessageMoveTask", self._start)
        session.events.register("before-call.sqs.ListMessageMoveTasks", self._list)

    def _url(self, arn: str) -> str:
        return self.sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]

    def _respond(self, model: OperationModel, response: dict[str, Any]) -> Any:
        assert model.output_shape is not None
        validate_parameters(response, model.output_shape)
        return AWSResponse(SQS_URL, 200, HTTPHeaders(), None), response

    def _start(self, params: dict[str, Any], model: OperationModel, **_: Any) -> Any:
        request = json.loads(params["body"])
        depth = self.sqs.get_queue_attributes(
            QueueUrl=self._url(request["SourceArn"]),
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]["ApproximateNumberOfMessages"]
        task = Task(
            handle=uuid.uuid4().hex,
            source_arn=request["SourceArn"],
            destination_arn=request["DestinationArn"],
            to_move=int(depth),
            rate=request.get("MaxNumberOfMessagesPerSecond"),
        )
        self.tasks.append(task)
        return self._respond(model, {"TaskHandle": task.handle})

    def _advance(self, task: Task) -> None:
        source, destination = self._url(task.source_arn), self._url(task.destination_arn)
        messages = self.sqs.receive_message(
            QueueUrl=source, MaxNumberOfMessages=min(10, self.per_check)
        ).get("Messages", [])
        for message in messages:
            if self.fail_after is not None and task.moved >= self.fail_after:
                task.status = "FAILED"
                task.failure_reason = "AWS.SimpleQueueService.NonExistentQueue"
                return
            self.sqs.send_message(QueueUrl=destination, MessageBody=message["Body"])
            self.sqs.delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])
            task.moved += 1
        if not messages:
            task.status = "COMPLETED"

    def _list(self, params: dict[str, Any], model: OperationModel, **_: Any) -> Any:
        request = json.loads(params["body"])
        tasks = [t for t in self.tasks if t.source_arn == request["SourceArn"]]
        results = []
        for task in reversed(tasks[-request.get("MaxResults", 1) :]):
            if task.status == "RUNNING":
                self._advance(task)
            result: dict[str, Any] = {
                "Status": task.status,
                "SourceArn": task.source_arn,
                "DestinationArn": task.destination_arn,
                "ApproximateNumberOfMessagesMoved": task.moved,
                "ApproximateNumberOfMessagesToMove": task.to_move,
                "StartedTimestamp": task.started,
            }
            if task.status == "RUNNING":
                result["TaskHandle"] = task.handle
            if task.rate is not None:
                result["MaxNumberOfMessagesPerSecond"] = task.rate
            if task.failure_reason:
                result["FailureReason"] = task.failure_reason
            results.append(result)
        return self._respond(model, {"Results": results})


@dataclass(frozen=True)
class Stack:
    name: str
    dead_letter_queue_url: str
    event_queue_url: str


@pytest.fixture
def deployed(aws_session: boto3.Session) -> Stack:
    """A CloudFormation stack on moto with the template's DeadLetterQueue and EventQueue."""
    template = load_template(default_template_path())
    resources = {logical_id: template["Resources"][logical_id] for logical_id in QUEUES}
    name = f"batchlens-{uuid.uuid4().hex[:6]}"
    cloudformation = aws_session.client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": resources}))

    def url(logical_id: str) -> str:
        return cloudformation.describe_stack_resource(StackName=name, LogicalResourceId=logical_id)[
            "StackResourceDetail"
        ]["PhysicalResourceId"]

    return Stack(name, url("DeadLetterQueue"), url("EventQueue"))


@pytest.fixture
def move_tasks(aws_session: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> MoveTasks:
    """The CLI's session is the moto one, with message-move tasks emulated."""
    tasks = MoveTasks(aws_session, per_check=4)
    monkeypatch.setattr(access, "boto3_session", lambda profile, region: aws_session)
    return tasks


def dead_letters(session: boto3.Session, stack: Stack, count: int) -> list[str]:
    """`count` Batch events in the dead-letter queue, as a failed enricher leaves them."""
    sqs = session.client("sqs")
    bodies = []
    for index in range(count):
        event = read_event("job-failed-oom")
        event["id"] = f"dead-{index}"
        bodies.append(json.dumps(event))
        sqs.send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody=bodies[-1])
    return bodies


def drain(session: boto3.Session, url: str) -> list[str]:
    sqs = session.client("sqs")
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in messages]
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["redrive", *argv, "--interval", "0"], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def queue_arn(session: boto3.Session, url: str) -> str:
    attributes = session.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["QueueArn"]
    )
    return attributes["Attributes"]["QueueArn"]


def test_redrive_by_stack_moves_every_dead_letter_back_to_the_event_queue(
    aws_session: boto3.Session, deployed: Stack, move_tasks: MoveTasks
) -> None:
    # Given 11 events in the stack's dead-letter queue
    bodies = dead_letters(aws_session, deployed, 11)
    # When an operator redrives the stack
    code, out, err = run("--stack", deployed.name)
    # Then one move task ran from the dead-letter queue to the event queue
    (task,) = move_tasks.tasks
    assert task.source_arn == queue_arn(aws_session, deployed.dead_letter_queue_url)
    assert task.destination_arn == queue_arn(aws_session, deployed.event_queue_url)
    # And every event is back in the event queue, none left behind
    assert sorted(drain(aws_session, deployed.event_queue_url)) == sorted(bodies)
    assert drain(aws_session, deployed.dead_letter_queue_url) == []
    # And the operator saw it start, progress and finish
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Moving about 11 messages from ")
    assert f"(task {task.handle})" in lines[0]
    assert "  RUNNING: 4/11 messages moved" in lines
    assert "  COMPLETED: 11/11 messages moved" in lines
    assert lines[-1].startswith("Done: 11 messages are back in ")


def test_redrive_by_queue_url_sends_them_to_the_queue_it_serves(
    aws_session: boto3.Session, deployed: Stack, move_tasks: MoveTasks
) -> None:
    # Given dead letters, and only the dead-letter queue's URL
    bodies = dead_letters(aws_session, deployed, 3)
    # When redriven at a chosen rate
    code, _, err = run("--queue-url", deployed.dead_letter_queue_url, "--rate", "5")
    # Then they go back to the queue whose redrive policy names it, at that rate
    assert code == 0, err
    (task,) = move_tasks.tasks
    assert task.destination_arn == queue_arn(aws_session, deployed.event_queue_url)
    assert task.rate == 5
    assert sorted(drain(aws_session, deployed.event_queue_url)) == sorted(bodies)


def test_an_empty_dead_letter_queue_starts_nothing(deployed: Stack, move_tasks: MoveTasks) -> None:
    # Given an empty dead-letter queue
    # When redriven
    code, out, _ = run("--stack", deployed.name)
    # Then nothing is started, and that is not an error
    assert code == 0
    assert "is empty: nothing to redrive" in out
    assert move_tasks.tasks == []


def test_a_dry_run_only_says_what_would_move(
    aws_session: boto3.Session, deployed: Stack, move_tasks: MoveTasks
) -> None:
    # Given dead letters
    dead_letters(aws_session, deployed, 2)
    # When an operator asks what a redrive would do
    code, out, _ = run("--stack", deployed.name, "--dry-run")
    # Then it says so, and moves nothing
    assert code == 0
    assert out.startswith("Would move about 2 messages from ")
    assert move_tasks.tasks == []
    assert len(drain(aws_session, deployed.dead_letter_queue_url)) == 2


def test_a_task_already_running_is_followed_not_restarted(
    aws_session: boto3.Session, deployed: Stack, move_tasks: MoveTasks
) -> None:
    # Given a redrive started without waiting
    dead_letters(aws_session, deployed, 6)
    code, out, _ = run("--stack", deployed.name, "--no-wait")
    assert code == 0
    assert "Not waiting" in out
    # When the operator runs it again
    code, out, _ = run("--stack", deployed.name)
    # Then the running task is followed to its end; no second one starts
    assert code == 0
    assert out.startswith("A move task out of ")
    assert len(move_tasks.tasks) == 1
    assert len(drain(aws_session, deployed.event_queue_url)) == 6


def test_a_failed_task_exits_non_zero_with_its_reason(
    aws_session: boto3.Session, deployed: Stack, move_tasks: MoveTasks
) -> None:
    # Given a move task that fails part-way
    dead_letters(aws_session, deployed, 9)
    move_tasks.fail_after = 5
    # When redriven
    code, out, _ = run("--stack", deployed.name)
    # Then the operator learns how far it got and why it stopped
    assert code == 1
    assert "The move task ended FAILED after 5 messages: " in out
    assert "NonExistentQueue" in out


def test_an_unknown_stack_is_one_line_and_exit_1(move_tasks: MoveTasks) -> None:
    # Given no such stack
    # When redriven
    code, out, err = run("--stack", "no-such-stack")
    # Then one line says so
    assert code == 1
    assert out == ""
    assert err.startswith("batchlens: stack 'no-such-stack' not found")


def test_a_queue_that_is_no_dead_letter_queue_needs_a_destination(
    aws_session: boto3.Session, deployed: Stack, move_tasks: MoveTasks
) -> None:
    # Given the event queue's URL (no queue sends it its dead letters)
    # When redriven without a destination
    code, _, err = run("--queue-url", deployed.event_queue_url)
    # Then the operator is asked for one
    assert code == 1
    assert "--to-queue-url" in err
    assert move_tasks.tasks == []


@pytest.mark.parametrize("flag", ["--no-wait", "--dry-run"])
def test_a_task_under_way_is_not_followed_when_told_not_to_wait(
    aws_session: boto3.Session, deployed: Stack, move_tasks: MoveTasks, flag: str
) -> None:
    # Given a move task still running
    dead_letters(aws_session, deployed, 12)
    assert run("--stack", deployed.name, "--no-wait")[0] == 0

    # When redrive runs again without waiting, or only to look
    code, out, _ = run("--stack", deployed.name, flag)

    # Then it says so and returns, leaving the task running
    assert code == 0
    assert "already under way (RUNNING" in out
    assert [task.status for task in move_tasks.tasks] == ["RUNNING"]


def test_a_rate_asked_of_a_task_already_under_way_is_said_not_to_apply(
    aws_session: boto3.Session, deployed: Stack, move_tasks: MoveTasks
) -> None:
    # Given a move task still running, started without a rate
    dead_letters(aws_session, deployed, 12)
    assert run("--stack", deployed.name, "--no-wait")[0] == 0

    # When redrive runs again asking for 10 messages a second
    code, out, _ = run("--stack", deployed.name, "--no-wait", "--rate", "10")

    # Then it says the running task keeps its own pace, and starts no other
    assert code == 0
    assert out.rstrip().endswith("not starting another; --rate 10 is not applied to it.")
    assert len(move_tasks.tasks) == 1


def test_no_second_task_starts_while_one_is_cancelling(
    aws_session: boto3.Session, deployed: Stack, move_tasks: MoveTasks
) -> None:
    # Given a task cancelled but not yet CANCELLED (SQS runs one active task per queue)
    dead_letters(aws_session, deployed, 12)
    assert run("--stack", deployed.name, "--no-wait")[0] == 0
    move_tasks.tasks[0].status = "CANCELLING"

    # When redrive runs again; then it starts no second task
    code, out, _ = run("--stack", deployed.name, "--no-wait")
    assert code == 0
    assert "already under way (CANCELLING" in out
    assert len(move_tasks.tasks) == 1


def test_a_dead_letter_queue_gone_before_its_task_starts_is_one_line(
    aws_session: boto3.Session, deployed: Stack, move_tasks: MoveTasks
) -> None:
    # Given dead letters, and SQS answering the move task's start that its source is gone (the
    # queue deleted while the command ran)
    dead_letters(aws_session, deployed, 3)
    gone = "The resource that you specified for the SourceArn parameter doesn't exist."

    def source_gone(**_: Any) -> Any:
        error = {"Code": "ResourceNotFoundException", "Message": gone}
        return AWSResponse(SQS_URL, 400, HTTPHeaders(), None), {"Error": error}

    aws_session.events.register_first("before-call.sqs.StartMessageMoveTask", source_gone)

    # When redriven; then one line names the call that failed and SQS's reason, no table
    code, out, err = run("--stack", deployed.name)
    assert (code, out) == (1, "")
    assert err == (
        "batchlens: redrive: StartMessageMoveTask failed (region us-east-1): "
        f"ResourceNotFoundException: {gone}\n"
    )
    assert move_tasks.tasks == []
