"""The soak: the real handler, SQS as Lambda's poller uses it, faults everywhere, then the truth.

moto's server (one request at a time, see tests/moto_server.py) holds the stack built from
template.yaml: the event queue with its RedrivePolicy, the dead-letter queue, the history table,
the topic and an SQS subscriber of it. Every event (and a share of duplicates, and a few poison
inputs) is sent to the event queue in shuffled order. `pollers` threads each play one Lambda
execution environment (a fresh load of functions/enrich/app.py): receive a batch of 1-100 messages,
invoke the handler, delete what it acknowledged, and make the rest visible again after
`visibility_s` (more than the function timeout, as the template's 360 s is 6 x 60 s). moto's
redrive moves a message received more than maxReceiveCount times to the dead-letter queue.

Time is compressed, never skipped: the function timeout is `function_timeout_s` (the alert claims
of Powertools Idempotency expire with it), boto3's backoff sleeps are skipped (their lengths are
counted), and everything else runs at real speed.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from botocore.retries.standard import ExponentialBackoff

from batchlens import aws
from batchlens import template as cfn
from batchlens.alerts import alert_status, should_alert
from batchlens.events import parse_event
from batchlens.history import LATEST_SK, job_pk, version_of
from batchlens.local import FakeLambdaContext, LocalStack, create_stack, create_table, sqs_event
from batchlens.records import JobRecord, normalise
from batchlens.settings import Settings
from tests.chaos.faults import FAULT_KINDS, BatchApi, FaultInjector, FaultRates, SimulatedCrash
from tests.chaos.workload import (
    PLANTED_SECRETS,
    Job,
    WorkloadBuilder,
    deliveries,
    poison_bodies,
)
from tests.handler_app import load_handler, powertools_handler
from tests.moto_server import locked_moto_server

Json = dict[str, Any]
AlertKey = tuple[str, str, int]
REPORT_KEYS = (
    "events",
    "faultsInjected",
    "jobsLost",
    "statusRegressions",
    "duplicateAlerts",
    "missedAlerts",
    "dlqMessages",
)


@dataclass(frozen=True, slots=True)
class SoakConfig:
    events: int = 6_500
    jobs: int = 650
    duplicate_share: float = 0.2  # of all deliveries
    seed: int = 6
    pollers: int = 4
    max_batch: int = 100
    function_timeout_s: int = 20  # >= 15 s, so alerts fetch log excerpts (logtail)
    visibility_s: int = 22
    budget_s: float = 540.0
    own_server: bool = True  # moto in its own process (another core); in-process for pytest
    rates: FaultRates = field(default_factory=FaultRates)

    @classmethod
    def small(cls) -> SoakConfig:
        """The `make test` variant: 600 events, 60 jobs, batches of 40 at most, 6 s timeouts.

        (With less, the pipeline's 1/4-of-the-timeout margin before publishing could not cover a
        publish that SNS fails twice and a ledger mark DynamoDB throttles, backoff included.)
        """
        return cls(
            events=600, jobs=60, max_batch=40, function_timeout_s=6, visibility_s=7, budget_s=150.0
        )


@dataclass(frozen=True, slots=True)
class DeadlineContext(FakeLambdaContext):
    """A Lambda context whose remaining time runs down to the invocation's deadline."""

    deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


# --- set-up ------------------------------------------------------------------------------------


@contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _no_backoff_sleeps(delays: list[float]) -> Iterator[None]:
    """boto3's standard retries without their sleeps (the delays it chose are kept)."""
    original = ExponentialBackoff.delay_amount

    def no_delay(self: ExponentialBackoff, context: Any) -> float:
        delays.append(original(self, context))
        return 0.0

    ExponentialBackoff.delay_amount = no_delay  # type: ignore[method-assign]
    try:
        yield
    finally:
        ExponentialBackoff.delay_amount = original  # type: ignore[method-assign]


_current = threading.local()


@contextmanager
def _clients_with_faults(dynamodb_url: str) -> Iterator[None]:
    """Every client the handler builds gets the hooks of the environment building it (and the
    DynamoDB client the endpoint of the DynamoDB server)."""
    original = aws.client

    def client(service: str, settings: Settings, session: Any = None) -> Any:
        if service == "dynamodb":
            settings = settings.model_copy(update={"endpoint_url": dynamodb_url})
        built = original(service, settings, session)  # type: ignore[call-overload]
        _current.environment.attach(built)
        return built

    aws.client = client
    try:
        yield
    finally:
        aws.client = original


@contextmanager
def _dynamodb_server(own_process: bool, endpoint_url: str) -> Iterator[str]:
    """DynamoDB in a server of its own when servers have their own processes: moto spends most of
    the soak's CPU time there (parsing update expressions), the rest on SQS and SNS."""
    if not own_process:
        yield endpoint_url
        return
    with locked_moto_server(own_process=True) as dynamodb_url:
        yield dynamodb_url


def _create_table(session: boto3.Session, endpoint_url: str, table_name: str) -> None:
    """The history table from template.yaml, as create_stack makes it."""
    template = cfn.load_template(cfn.default_template_path())
    create_table(session.client("dynamodb", endpoint_url=endpoint_url), template, table_name)


def _send_all(sqs: Any, queue_url: str, bodies: list[str]) -> dict[str, str]:
    """SendMessageBatch, 10 at a time and under 256 KiB a call; returns message id -> body."""
    sent: dict[str, str] = {}
    batch: list[str] = []

    def flush() -> None:
        if not batch:
            return
        entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(batch)]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"SQS refused messages: {response['Failed'][:3]}")
        for ok in response["Successful"]:
            sent[ok["MessageId"]] = batch[int(ok["Id"])]
        batch.clear()

    for body in bodies:
        if len(batch) == 10 or sum(len(b) for b in batch) + len(body) > 200_000:
            flush()
        batch.append(body)
    flush()
    return sent


def _seed_job_logs(logs: Any, jobs: list[Job]) -> int:
    """Log lines (with planted secrets) for every failed attempt the alerts will quote."""
    now = int(time.time() * 1000)
    seeded = 0
    for group in {job.log_group for job in jobs if job.log_stream is not None}:
        logs.create_log_group(logGroupName=group)
    for job in jobs:
        if job.log_stream is None:
            continue
        logs.create_log_stream(logGroupName=job.log_group, logStreamName=job.log_stream)
        lines = [
            "loading shard 7/12",
            f"export DB_PASSWORD={PLANTED_SECRETS[1]}",
            f"using key {PLANTED_SECRETS[0]} and token {PLANTED_SECRETS[2]}",
            "Killed",
        ]
        logs.put_log_events(
            logGroupName=job.log_group,
            logStreamName=job.log_stream,
            logEvents=[
                {"timestamp": now + n, "message": line}  # older than 14 days is refused
                for n, line in enumerate(lines)
            ],
        )
        seeded += 1
    return seeded


# --- the pollers -------------------------------------------------------------------------------


class Poller:
    """Lambda's SQS poller for one execution environment."""

    def __init__(
        self,
        number: int,
        config: SoakConfig,
        stack: LocalStack,
        sqs: Any,
        queue_arn: str,
        injector: FaultInjector,
        done: threading.Event,
        idle: Callable[[bool], None],
    ) -> None:
        self.number = number
        self._config = config
        self._stack = stack
        self._sqs = sqs
        self._queue_arn = queue_arn
        self._injector = injector
        self._done = done
        self._idle = idle
        self._rng = random.Random(config.seed * 100 + number)
        self.app: ModuleType = load_handler()
        self._environment = injector.environment()
        self.invocations = 0
        self.timings: list[float] = []  # how long each invocation ran
        self.cold_starts = 0
        self.error: BaseException | None = None

    def _receive(self) -> list[Mapping[str, Any]]:
        wanted = self._rng.randint(1, self._config.max_batch)
        messages: list[Mapping[str, Any]] = []
        while len(messages) < wanted:
            got = self._sqs.receive_message(
                QueueUrl=self._stack.event_queue_url,
                MaxNumberOfMessages=min(10, wanted - len(messages)),
                VisibilityTimeout=120,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            messages += got
        return messages

    def run(self) -> None:
        try:
            while not self._done.is_set():
                messages = self._receive()
                if not messages:
                    self._idle(True)
                    time.sleep(0.1)
                    continue
                self._idle(False)
                self._invoke(messages)
        except BaseException as exc:  # report, never hang the soak
            self.error = exc
            self._done.set()

    def _invoke(self, messages: list[Mapping[str, Any]]) -> None:
        if self._environment.dead:  # the last invocation crashed: a new execution environment
            old = self.app.__dict__["_enricher"]
            self.app.__dict__["_enricher"] = None
            if old is not None:
                old._pool.shutdown(wait=False)
            self._environment = self._injector.environment()
        if self.app.__dict__["_enricher"] is None:
            self.cold_starts += 1
        deadline = time.monotonic() + self._config.function_timeout_s
        # Whole-batch faults (a crash, a lost acknowledgement) fail up to 100 messages at once,
        # and they come back together: at these rates a message could meet maxReceiveCount of
        # them in a row and be dead-lettered by the soak's own dice, as real SQS would do it
        # (redrive brings it back). A message on one of its last three receives is spared them,
        # so what dead-letters a good event is batchlens failing it, the thing the soak measures.
        worn = self._worn(messages)
        if worn:
            self._injector.stats.add("wholeBatchFaultsSpared")
        self._environment.begin(None if worn else self._injector.crash_plan(), deadline)
        _current.environment = self._environment
        context = DeadlineContext(
            aws_request_id=f"p{self.number}-{self.invocations}", deadline=deadline
        )
        self.invocations += 1
        ids = [message["MessageId"] for message in messages]
        acknowledged: set[str] = set()
        try:
            response = self.app.handler(sqs_event(messages, self._queue_arn), context)
            failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
            acknowledged = set(ids) - failed
            if not worn and self._injector.chance(self._injector.rates.lost_ack):
                self._injector.stats.add("lostAcks")  # the answer never reached Lambda's poller
                acknowledged = set()
        except SimulatedCrash:
            pass  # the environment died: nothing was acknowledged
        finally:
            self._environment.end()
        if self._environment.dead:
            # It died in a worker thread whose future swallowed the crash: a dead process returns
            # nothing either.
            acknowledged = set()
        self.timings.append(time.monotonic() + self._config.function_timeout_s - deadline)
        self._settle(messages, acknowledged)

    def _worn(self, messages: list[Mapping[str, Any]]) -> bool:
        """Is a message of the batch on one of its last three receives before the DLQ?"""
        last_three = self._stack.max_receive_count - 2
        return any(
            int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) >= last_three
            for m in messages
        )

    def _settle(self, messages: list[Mapping[str, Any]], acknowledged: set[str]) -> None:
        """Delete what was acknowledged; the rest becomes visible again after the timeout."""
        url = self._stack.event_queue_url
        done = [m for m in messages if m["MessageId"] in acknowledged]
        again = [m for m in messages if m["MessageId"] not in acknowledged]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(done[start : start + 10])
                ],
            )
        for start in range(0, len(again), 10):
            self._sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {
                        "Id": str(n),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": self._config.visibility_s,
                    }
                    for n, m in enumerate(again[start : start + 10])
                ],
            )


def _queue_is_empty(sqs: Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


def _drain(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return bodies
        bodies += [m["Body"] for m in messages]


# --- the truth ---------------------------------------------------------------------------------


def _record(event: Json) -> JobRecord:
    return normalise(parse_event(event))


def _key(record: JobRecord) -> AlertKey:
    return (record.job_id, alert_status(record), len(record.attempts))


def _published_key(record: Json) -> AlertKey:
    attempts = record.get("attempts") or []
    status = "QUEUE_BLOCKED" if "QUEUE_BLOCKED" in record["eventType"] else record["status"]
    # A truncated record keeps its latest attempt, with its real number.
    return (record["jobId"], status, attempts[-1]["number"] if attempts else 0)


def verify(
    session: boto3.Session,
    endpoint_url: str,
    dynamodb_url: str,
    stack: LocalStack,
    jobs: list[Job],
    poison: set[str],
    log_text: str,
    window: list[str],
) -> tuple[dict[str, int], Json]:
    """Compare what the stack holds with the truth: the report's counts and their detail."""
    dynamodb = session.client("dynamodb", endpoint_url=dynamodb_url)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    defaults = Settings.from_env({})
    # One Scan of the whole table (here only: batchlens itself never scans) instead of a read
    # and a query per job, which moto answers slowly.
    items = _scan(dynamodb, stack.table_name)
    latest = {item["pk"]["S"]: item for item in items if item["sk"]["S"] == LATEST_SK}
    timeline: dict[str, set[str]] = {}
    for item in items:
        if item["sk"]["S"].startswith("T#"):
            timeline.setdefault(item["pk"]["S"], set()).add(item["eventId"]["S"])

    lost, regressed, ahead, events_missing = [], [], [], 0
    expected: set[AlertKey] = set()
    possible: set[AlertKey] = set()
    for job in jobs:
        records = [_record(event) for event in job.events]
        final = records[-1]
        possible |= {_key(r) for r in records if should_alert(r, defaults)}
        if should_alert(final, defaults):
            expected.add(_key(final))
        stored = latest.get(job_pk(job.job_id))
        if stored is None:
            lost.append(job.job_id)
            continue
        truth, version = version_of(final), stored["version"]["S"]
        if version < truth or json.loads(stored["record"]["S"])["eventId"] != final.event_id:
            regressed.append(job.job_id)
        elif version > truth:
            ahead.append(job.job_id)
        seen = timeline.get(job_pk(job.job_id), set())
        events_missing += sum(1 for r in records if r.event_id not in seen)

    notifications = _drain(sqs, stack.alert_queue_url)
    published = [json.loads(json.loads(body)["Message"]) for body in notifications]
    received = Counter(_published_key(record) for record in published)
    # Each publish by an invocation that then ran out of time may be followed by one more.
    excused = Counter(_published_key(json.loads(json.loads(m)["default"])) for m in window)
    doubled = {key: n - 1 - excused[key] for key, n in received.items() if n > 1 + excused[key]}
    duplicates = sum(doubled.values())
    missed = sorted(expected - set(received))
    unexpected = sorted(set(received) - possible)

    dead = _drain(sqs, stack.dead_letter_queue_url)
    dead_poison = [body for body in dead if body in poison]
    table_text = json.dumps(items)
    leaks = {
        where: sum(secret in text for secret in PLANTED_SECRETS)
        for where, text in (
            ("table", table_text),
            ("sns", "\n".join(notifications)),
            ("logs", log_text),
        )
    }
    counts = {
        "jobsLost": len(lost),
        "statusRegressions": len(regressed),
        "duplicateAlerts": duplicates,
        "missedAlerts": len(missed),
        "dlqMessages": len(dead),
    }
    detail: Json = {
        "jobs": len(jobs),
        "jobsByKind": dict(Counter(job.kind for job in jobs)),
        "jobsAheadOfTruth": len(ahead),
        "timelineEventsMissing": events_missing,
        "alertsExpected": len(expected),
        "alertsReceived": sum(received.values()),
        "alertsAgainAfterOverrun": sum(
            min(excused[key], n - 1) for key, n in received.items() if n > 1
        ),
        "alertsUnexpected": len(unexpected),
        "alertsWithLogExcerpt": sum(1 for record in published if record.get("logExcerpt")),
        "alertsTruncated": sum(1 for record in published if record.get("truncated")),
        "dlqPoison": len(dead_poison),
        "dlqNotPoison": len(dead) - len(dead_poison),
        "poisonSent": len(poison),
        "poisonNotInDlq": len(poison - set(dead)),
        "poisonLogLines": log_text.count("Poison record"),
        "secretsLeaked": leaks,
        "examples": {
            "lost": lost[:5],
            "regressed": regressed[:5],
            "missed": [list(key) for key in missed[:5]],
            "duplicated": [list(key) for key in doubled][:5],
            "unexpected": [list(key) for key in unexpected[:5]],
            # A good event in the dead-letter queue: its job, status and event id, to find its
            # deliveries in the log (message_id, event_id).
            "deadLettered": [_event_key(body) for body in dead if body not in poison][:20],
        },
    }
    return counts, detail


def _event_key(body: str) -> list[str]:
    event = json.loads(body)
    detail = event.get("detail") or {}
    return [str(detail.get("jobId")), str(detail.get("status")), str(event.get("id"))]


def _scan(dynamodb: Any, table: str) -> list[Json]:
    items: list[Json] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        items += page.get("Items", [])
    return items


# --- the run -----------------------------------------------------------------------------------


def run(config: SoakConfig, log_path: Path) -> Json:
    """The whole soak; returns the report (REPORT_KEYS, plus `details`)."""
    started = time.monotonic()
    rng = random.Random(config.seed)
    jobs = WorkloadBuilder(config.seed).build(
        round(config.events * (1 - config.duplicate_share)), config.jobs
    )
    bodies = list(deliveries(jobs, config.duplicate_share, rng))
    poison = poison_bodies(rng)
    # Poison among the first 50 deliveries: it needs maxReceiveCount rounds of the visibility
    # timeout to reach the dead-letter queue, which then overlap with the rest of the run.
    head = bodies[:45] + poison
    rng.shuffle(head)
    everything = head + bodies[45:]

    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    delays: list[float] = []
    with (
        _environ(credentials),
        locked_moto_server(own_process=config.own_server) as endpoint_url,
        _dynamodb_server(config.own_server, endpoint_url) as dynamodb_url,
    ):
        session = boto3.Session(region_name="us-east-1")
        stack = create_stack(session, endpoint_url=endpoint_url)
        if dynamodb_url != endpoint_url:
            _create_table(session, dynamodb_url, stack.table_name)
        sqs = session.client("sqs", endpoint_url=endpoint_url)
        seeded = _seed_job_logs(session.client("logs", endpoint_url=endpoint_url), jobs)
        sent: dict[str, str] = {}
        all_sent = threading.Event()

        def send() -> None:  # events keep arriving while the pollers work, as from EventBridge
            for start in range(0, len(everything), 50):
                sent.update(_send_all(sqs, stack.event_queue_url, everything[start : start + 50]))
            all_sent.set()

        queue_arn = sqs.get_queue_attributes(
            QueueUrl=stack.event_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        injector = FaultInjector(config.rates, config.seed, BatchApi(jobs))

        done = threading.Event()
        idle_lock = threading.Lock()
        idle: set[int] = set()
        pollers: list[Poller] = []

        def on_idle(number: int) -> Callable[[bool], None]:
            def report(is_idle: bool) -> None:
                with idle_lock:
                    (idle.add if is_idle else idle.discard)(number)
                    everyone = len(idle) == len(pollers)
                if everyone and all_sent.is_set() and _queue_is_empty(sqs, stack.event_queue_url):
                    done.set()

            return report

        with (
            _environ(stack.environment),
            _no_backoff_sleeps(delays),
            _clients_with_faults(dynamodb_url),
            log_path.open("w", encoding="utf-8") as log_file,
        ):
            stdout, sys.stdout = sys.stdout, log_file  # the handler's JSON logs and EMF metrics
            try:
                pollers = [
                    Poller(n, config, stack, sqs, queue_arn, injector, done, on_idle(n))
                    for n in range(config.pollers)
                ]
                for poller in pollers:
                    powertools_handler(poller.app).setStream(log_file)
                threads = [threading.Thread(target=p.run, daemon=True) for p in pollers]
                threads.append(threading.Thread(target=send, daemon=True))
                for thread in threads:
                    thread.start()
                finished = done.wait(timeout=config.budget_s)
                done.set()
                for thread in threads:
                    thread.join(timeout=60)
            finally:
                sys.stdout = stdout
                for poller in pollers:
                    powertools_handler(poller.app).setStream(sys.stdout)
        errors = [repr(p.error) for p in pollers if p.error is not None]
        log_text = log_path.read_text(encoding="utf-8")
        processed_at = time.monotonic()
        counts, detail = verify(
            session, endpoint_url, dynamodb_url, stack, jobs, set(poison), log_text, injector.window
        )

    faults = injector.stats.snapshot()
    report: Json = {
        "events": len(everything),
        "faultsInjected": sum(faults.get(kind, 0) for kind in FAULT_KINDS),
        **counts,
        "details": {
            "completed": finished and not errors,
            "pollerErrors": errors,
            "seconds": round(time.monotonic() - started, 1),
            "verifySeconds": round(time.monotonic() - processed_at, 1),
            "uniqueEvents": sum(len(job.events) for job in jobs),
            "duplicateDeliveries": len(bodies) - sum(len(job.events) for job in jobs),
            "messagesSent": len(sent),
            "faults": faults,
            "backoffSkippedSeconds": round(sum(delays), 1),
            "batchApiCalls": dict(injector.batch_api.calls),
            "invocations": sum(p.invocations for p in pollers),
            "coldStarts": sum(p.cold_starts for p in pollers),
            "invocationSeconds": _spread([seconds for p in pollers for seconds in p.timings]),
            "logStreamsSeeded": seeded,
            "config": {
                "seed": config.seed,
                "pollers": config.pollers,
                "functionTimeoutSeconds": config.function_timeout_s,
                "visibilitySeconds": config.visibility_s,
                "maxReceiveCount": stack.max_receive_count,
            },
            **detail,
        },
    }
    return report


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values) or [0.0]
    return {
        "median": round(ordered[len(ordered) // 2], 2),
        "p95": round(ordered[int(len(ordered) * 0.95)], 2),
        "max": round(ordered[-1], 2),
    }


def failures(report: Json) -> list[str]:
    """Why the soak failed (empty when it passed)."""
    details = report["details"]
    problems = [
        f"{key} = {report[key]}"
        for key in ("jobsLost", "statusRegressions", "duplicateAlerts", "missedAlerts")
        if report[key]
    ]
    if details["dlqNotPoison"]:
        problems.append(f"{details['dlqNotPoison']} good events in the dead-letter queue")
    if details["poisonNotInDlq"]:
        problems.append(f"{details['poisonNotInDlq']} poison inputs not in the dead-letter queue")
    if details["timelineEventsMissing"]:
        problems.append(f"{details['timelineEventsMissing']} events missing from timelines")
    if details["alertsUnexpected"]:
        problems.append(f"{details['alertsUnexpected']} alerts no event called for")
    if any(details["secretsLeaked"].values()):
        problems.append(f"planted secrets leaked: {details['secretsLeaked']}")
    if not details["completed"]:
        problems.append(f"did not finish in time or a poller failed: {details['pollerErrors']}")
    return problems
