"""Faults on every AWS call the handler makes, through botocore's event hooks on its real clients.

- throttling (DynamoDB `ProvisionedThroughputExceededException`/`ThrottlingException`, SNS
  `Throttling`, Batch `TooManyRequestsException`) and 5xx errors are HTTP responses returned from a
  `before-send` hook, so boto3's standard retry handler (and its retry quota) deals with them;
- timeouts are raised from `before-send` (`ConnectTimeoutError`: nothing sent; `ReadTimeoutError`:
  for DynamoDB, half the time after the request really reached the table, as when a response is
  lost). SNS gets no lost responses: a PublishBatch whose answer is lost may be delivered twice by
  any client (standard topics are at-least-once), which no publisher can prevent;
- BatchWriteItem leaves some or all items in `UnprocessedItems` and PublishBatch reports some or all
  entries in `Failed`: the held-back items and entries are removed from the request before it is
  sent (so they are really not written, not published), then reported in the parsed response;
- an execution environment crashes mid-invocation (`SimulatedCrash`, a BaseException that no
  `except Exception` catches) after k calls, or at its deadline: every later call of that
  environment, from any thread, crashes too, as if the process were gone.

Crashes are not injected between an invocation's first successful PublishBatch and its return: a
crash there (after SNS accepted an alert, before the alert ledger records it) re-sends that alert
once its claim expires. That window is the one place batchlens is at-least-once; the soak counts
what it declined (`crashesDeclined`) so that the report says so. A timeout is not declined: the soak
compresses a function timeout into seconds, and a machine busy with other work can stretch an
invocation's publish and ledger marks past it, as a slow network could in Lambda. An invocation
whose deadline passes after SNS accepted alerts is counted (`publishWindowOverruns`), and each of
those publishes may be followed by one more, which the soak does not count as a duplicate.

The fake Batch API answers DescribeJobs and DescribeServiceJob from the truth: the job's state now
(its final event), or nothing for a job Batch no longer keeps.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from tests.chaos.workload import Job

_SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"


class SimulatedCrash(BaseException):
    """The execution environment died (out of memory, timeout, killed): nothing after it runs."""


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Probabilities: per HTTP attempt, per call, or per invocation."""

    # About one HTTP attempt in six fails, for the whole run. That ran boto3's standard-mode
    # retry quota dry until batchlens's DynamoDB clients counted a failed condition as an answer
    # (see the README's soak section).
    throttle: float = 0.10
    server_error: float = 0.03
    connect_timeout: float = 0.015
    read_timeout: float = 0.015
    unprocessed_items: float = 0.55  # of BatchWriteItem calls
    publish_failures: float = 0.45  # of PublishBatch calls
    crash: float = 0.1  # of invocations: dies after k AWS calls
    crash_within_calls: int = 80  # k is uniform in 1..this
    lost_ack: float = 0.03  # of invocations: returned, but the answer never reached SQS


class FaultStats:
    """Thread-safe counters of what was injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


#: What counts as an injected fault in the report's `faultsInjected`.
FAULT_KINDS = (
    "throttles",
    "serverErrors",
    "connectTimeouts",
    "readTimeouts",
    "unprocessedItems",
    "publishFailures",
    "crashes",
    "deadlineCrashes",
    "lostAcks",
)


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def http_response(
    request: AWSPreparedRequest, status: int, body: bytes, headers: dict[str, str]
) -> AWSResponse:
    http_headers = HTTPHeaders()
    for name, value in headers.items():
        http_headers[name] = value
    http_headers["Content-Length"] = str(len(body))
    http_headers["x-amzn-RequestId"] = "chaos"
    return AWSResponse(request.url, status, http_headers, _RawBody(body))


def error_response(
    request: AWSPreparedRequest, service: str, status: int, code: str
) -> AWSResponse:
    """An AWS error response in the service's own protocol."""
    message = f"{code} (injected by the chaos soak)"
    if service == "sns":
        body = (
            f'<ErrorResponse xmlns="{_SNS_NS}"><Error><Type>'
            f"{'Sender' if status < 500 else 'Receiver'}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>chaos</RequestId></ErrorResponse>"
        ).encode()
        return http_response(request, status, body, {"Content-Type": "text/xml"})
    if service == "batch":  # rest-json: the code travels in a header
        body = json.dumps({"message": message}).encode()
        return http_response(
            request, status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": code}
        )
    prefix = "com.amazonaws.dynamodb.v20120810#" if service == "dynamodb" else ""
    body = json.dumps({"__type": prefix + code, "message": message}).encode()
    return http_response(request, status, body, {"Content-Type": "application/x-amz-json-1.0"})


# Keyed by the service's part of botocore's event names (its hyphenized service id).
THROTTLE_CODES = {
    "dynamodb": ("ProvisionedThroughputExceededException", "ThrottlingException"),
    "sns": ("Throttling",),
    "batch": ("TooManyRequestsException",),
    "cloudwatch-logs": ("ThrottlingException",),
}
SERVER_ERRORS = {
    "dynamodb": ((500, "InternalServerError"), (503, "ServiceUnavailable")),
    "sns": ((500, "InternalError"), (503, "ServiceUnavailable")),
    "batch": ((500, "ServerException"),),
    "cloudwatch-logs": ((500, "ServiceUnavailableException"),),
}


class BatchApi:
    """DescribeJobs and DescribeServiceJob, answered from the truth."""

    def __init__(self, jobs: list[Job]) -> None:
        self._jobs = {job.job_id: job for job in jobs}
        self.calls: Counter[str] = Counter()

    def respond(self, request: AWSPreparedRequest, operation: str) -> AWSResponse:
        self.calls[operation] += 1
        raw = request.body or b"{}"
        body = json.loads(raw if isinstance(raw, str | bytes | bytearray) else raw.read())
        headers = {"Content-Type": "application/json"}
        if operation == "DescribeJobs":
            found = [self._describe(job_id) for job_id in body.get("jobs", [])]
            payload = {"jobs": [job for job in found if job is not None]}
            return http_response(request, 200, json.dumps(payload).encode(), headers)
        if operation == "DescribeServiceJob":
            job = self._describe(body.get("jobId", ""))
            if job is None:
                return error_response(request, "batch", 400, "ClientException")
            return http_response(request, 200, json.dumps(job).encode(), headers)
        return http_response(request, 200, b"{}", headers)

    def _describe(self, job_id: str) -> dict[str, Any] | None:
        job = self._jobs.get(job_id)
        return job.described() if job is not None else None


class Environment:
    """One Lambda execution environment: its clients' hooks, and how its invocation may end."""

    def __init__(self, injector: FaultInjector) -> None:
        self._injector = injector
        self._lock = threading.Lock()
        self.dead = False
        self._calls = 0
        self._crash_at: int | None = None
        self._deadline = float("inf")
        self._sent: list[str] = []  # this invocation's published messages
        self._noted = 0  # how many of them an overrun already put in the injector's window

    def begin(self, crash_at: int | None, deadline: float) -> None:
        with self._lock:
            self._calls, self._crash_at, self._deadline = 0, crash_at, deadline
            self._sent, self._noted = [], 0

    def end(self) -> None:
        with self._lock:
            if time.monotonic() > self._deadline:
                self._overran()
            if self._crash_at is not None and not self.dead and self._calls >= self._crash_at:
                self._injector.stats.add("crashesDeclined")  # only the publish window remained
            self._crash_at = None
            self._deadline = float("inf")

    def step(self) -> None:
        """Called before every HTTP attempt: the environment may die here."""
        with self._lock:
            if self.dead:
                raise SimulatedCrash("the execution environment is gone")
            self._calls += 1
            if time.monotonic() > self._deadline:
                self.dead = True
                self._injector.stats.add("deadlineCrashes")
                self._overran()
                raise SimulatedCrash("the invocation ran past its deadline")
            if self._crash_at is not None and self._calls >= self._crash_at and not self._sent:
                self.dead = True
                self._injector.stats.add("crashes")
                raise SimulatedCrash(f"crashed before AWS call {self._calls} of the invocation")

    def published(self, messages: list[str]) -> None:
        with self._lock:
            self._sent += messages

    def _overran(self) -> None:
        """The deadline passed after SNS accepted alerts (a real timeout, not an injected crash):
        their ledger marks may not be written before their claims expire, so each may go out
        once more, the at-least-once window the module's docstring describes."""
        if fresh := self._sent[self._noted :]:
            self._injector.stats.add("publishWindowOverruns")
            self._injector.note_window(fresh)
            self._noted = len(self._sent)

    # --- hooks ------------------------------------------------------------------------------

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build", self._before_parameter_build)
        events.register("before-send", self._before_send)
        events.register("after-call.dynamodb.BatchWriteItem", self._after_batch_write)
        events.register("after-call.sns.PublishBatch", self._after_publish_batch)

    def _before_parameter_build(
        self, params: dict[str, Any], context: dict[str, Any], event_name: str, **_: Any
    ) -> None:
        _local.crafted = None  # a crafted answer is for the call that set it only
        if event_name.endswith("dynamodb.BatchWriteItem"):
            self._hold_back_items(params, context)
        elif event_name.endswith("sns.PublishBatch"):
            self._fail_entries(params, context)
            context["chaos_messages"] = {
                entry["Id"]: entry["Message"] for entry in params["PublishBatchRequestEntries"]
            }

    def _hold_back_items(self, params: dict[str, Any], context: dict[str, Any]) -> None:
        injector = self._injector
        if not injector.chance(injector.rates.unprocessed_items):
            return
        injector.stats.add("unprocessedItems")
        (table, requests), *_ = params["RequestItems"].items()
        if len(requests) >= 2 and injector.chance(0.7):
            held = injector.sample(requests, injector.randint(1, len(requests) - 1))
            params["RequestItems"] = {table: [r for r in requests if r not in held]}
            context["chaos_unprocessed"] = (table, held)
            return
        body = json.dumps({"UnprocessedItems": {table: requests}}).encode()
        _local.crafted = lambda request: http_response(
            request, 200, body, {"Content-Type": "application/x-amz-json-1.0"}
        )

    def _fail_entries(self, params: dict[str, Any], context: dict[str, Any]) -> None:
        injector = self._injector
        if not injector.chance(injector.rates.publish_failures):
            return
        injector.stats.add("publishFailures")
        entries = params["PublishBatchRequestEntries"]
        if len(entries) >= 2 and injector.chance(0.7):
            held = injector.sample(entries, injector.randint(1, len(entries) - 1))
            params["PublishBatchRequestEntries"] = [e for e in entries if e not in held]
            context["chaos_failed"] = [entry["Id"] for entry in held]
            return
        members = "".join(
            f"<member><Id>{escape(entry['Id'])}</Id><Code>InternalError</Code>"
            "<Message>injected</Message><SenderFault>false</SenderFault></member>"
            for entry in entries
        )
        body = (
            f'<PublishBatchResponse xmlns="{_SNS_NS}"><PublishBatchResult><Successful/>'
            f"<Failed>{members}</Failed></PublishBatchResult><ResponseMetadata><RequestId>"
            "chaos</RequestId></ResponseMetadata></PublishBatchResponse>"
        ).encode()
        _local.crafted = lambda request: http_response(
            request, 200, body, {"Content-Type": "text/xml"}
        )

    def _after_batch_write(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        held = context.pop("chaos_unprocessed", None)
        if held is not None:
            table, requests = held
            parsed.setdefault("UnprocessedItems", {}).setdefault(table, []).extend(requests)

    def _after_publish_batch(
        self, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        failed = context.pop("chaos_failed", None)
        messages = context.pop("chaos_messages", {})
        if parsed.get("Successful"):
            self.published([messages[entry["Id"]] for entry in parsed["Successful"]])
        if failed:
            parsed.setdefault("Failed", []).extend(
                {
                    "Id": entry_id,
                    "Code": "InternalError",
                    "Message": "injected",
                    "SenderFault": False,
                }
                for entry_id in failed
            )

    def _before_send(
        self, request: AWSPreparedRequest, event_name: str, **_: Any
    ) -> AWSResponse | None:
        _hook, service, operation = event_name.split(".", 2)
        self.step()
        crafted: Callable[[AWSPreparedRequest], AWSResponse] | None = _local.__dict__.pop(
            "crafted", None
        )
        if crafted is not None:
            return crafted(request)
        injector = self._injector
        rates = injector.rates
        roll = injector.random()
        if roll < rates.throttle:
            injector.stats.add("throttles")
            code = injector.choice(THROTTLE_CODES[service])
            return error_response(request, service, 429 if service == "batch" else 400, code)
        roll -= rates.throttle
        if roll < rates.server_error:
            injector.stats.add("serverErrors")
            status, code = injector.choice(SERVER_ERRORS[service])
            return error_response(request, service, status, code)
        roll -= rates.server_error
        if roll < rates.connect_timeout:
            injector.stats.add("connectTimeouts")
            raise ConnectTimeoutError(endpoint_url=request.url)
        roll -= rates.connect_timeout
        if roll < rates.read_timeout and service != "sns":
            injector.stats.add("readTimeouts")
            if service == "dynamodb" and injector.chance(0.5):
                injector.stats.add("readTimeoutsAfterApply")
                injector.send(request)  # the table applied it; only the answer is lost
            raise ReadTimeoutError(endpoint_url=request.url)
        if service == "batch":
            return injector.batch_api.respond(request, operation)
        return None


_local = threading.local()


class FaultInjector:
    """Shared by every environment: the rates, the random source, the counters, the Batch API."""

    def __init__(self, rates: FaultRates, seed: int, batch_api: BatchApi) -> None:
        self.rates = rates
        self.stats = FaultStats()
        self.batch_api = batch_api
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._http = URLLib3Session()
        self.window: list[str] = []  # messages published by invocations that overran

    def note_window(self, messages: list[str]) -> None:
        with self._lock:
            self.window += messages

    def environment(self) -> Environment:
        return Environment(self)

    def random(self) -> float:
        with self._lock:
            return self._rng.random()

    def chance(self, probability: float) -> bool:
        return self.random() < probability

    def randint(self, low: int, high: int) -> int:
        with self._lock:
            return self._rng.randint(low, high)

    def choice(self, options: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._rng.choice(options)

    def sample(self, items: list[Any], count: int) -> list[Any]:
        with self._lock:
            return self._rng.sample(items, count)

    def send(self, request: AWSPreparedRequest) -> None:
        self._http.send(request)

    def crash_plan(self) -> int | None:
        """For a new invocation: the AWS call it dies at, or None."""
        if not self.chance(self.rates.crash):
            return None
        return self.randint(1, self.rates.crash_within_calls)
