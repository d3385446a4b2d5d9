"""A corpus of malformed and hostile SQS message bodies, each with what the enricher must do.

`poison` inputs are not AWS Batch events batchlens can use: each must fail alone (reported in
`batchItemFailures`, so SQS redrives it to the dead-letter queue after `maxReceiveCount` receives),
with a log line that says why (`why` is a fragment of it). The others are hostile but valid events
(unicode, nulls, megabytes, a thousand attempts, junk in unknown fields): each must be processed.
Built from the real-shaped samples in events/, so only the named defect differs from what AWS sends.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.conftest import read_event

Json = dict[str, Any]

#: SQS's (and EventBridge's) largest message: inputs above it can reach the handler only directly.
SQS_MAX_BYTES = 262_144


@dataclass(frozen=True, slots=True)
class BadInput:
    name: str
    body: str
    poison: bool
    why: str = ""  # for poison: a fragment of the logged reason

    @property
    def fits_sqs(self) -> bool:
        return len(self.body.encode()) <= SQS_MAX_BYTES


def _event(name: str = "job-failed-oom", job_id: str | None = None) -> Json:
    event = read_event(name)
    if job_id is not None:
        event["detail"]["jobId"] = job_id
        event["detail"]["jobArn"] = event["detail"]["jobArn"].rsplit("/", 1)[0] + f"/{job_id}"
    return event


def _changed(change: Callable[[Json], Any], name: str = "job-failed-oom") -> str:
    event = _event(name)
    change(event)
    return json.dumps(event)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"deeper": value}
    return value


def _nulls_everywhere(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _nulls_everywhere(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_nulls_everywhere(item) for item in value]
    return None


def _set(path: str, value: Any) -> Callable[[Json], None]:
    def change(event: Json) -> None:
        *parents, last = path.split(".")
        target: Any = event
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value

    return change


def _drop(path: str) -> Callable[[Json], None]:
    def change(event: Json) -> None:
        *parents, last = path.split(".")
        target: Any = event
        for part in parents:
            target = target[part]
        target.pop(last)

    return change


def _many_attempts(event: Json) -> None:
    attempt = event["detail"]["attempts"][-1]
    event["detail"]["attempts"] = [copy.deepcopy(attempt) for _ in range(1_000)]
    event["detail"]["retryStrategy"] = {"attempts": 1_000}


def _unicode(event: Json) -> None:
    detail = event["detail"]
    detail["jobName"] = "データ処理-🚀-\u200b-עברית"
    detail["statusReason"] = "失敗しました 💥 \u202eevil\u202c \x1b[31mred\x1b[0m\ttab\r\nnew line"
    detail["attempts"][-1]["container"]["reason"] = "Ошибка: 🧨" * 100


def _optional_nulls(event: Json) -> None:
    detail = event["detail"]
    for key in ("statusReason", "createdAt", "startedAt", "stoppedAt", "retryStrategy"):
        detail[key] = None
    detail["container"] = None
    detail["attempts"] = []
    detail["dependsOn"] = []
    detail["tags"] = {}


def _junk_in_unknown_fields(event: Json) -> None:
    event["detail"]["futureField"] = _nested(400)
    event["detail"]["container"]["futureList"] = [[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]
    event["unknownEnvelopeField"] = {"a": [None, 1, "x", {"b": []}]}


def _huge_environment(event: Json) -> None:
    container = event["detail"]["container"]
    container["environment"] = [{"name": f"VAR_{n}", "value": "v" * 100} for n in range(500)] + [
        {"name": "DB_PASSWORD", "value": "hunter2-corpus"}
    ]


def _summary_with_many_keys(event: Json) -> None:
    props = event["detail"]["arrayProperties"]
    props["statusSummary"] = {f"STATUS_{n}": n for n in range(5_000)} | {"FAILED": 3}


def build() -> list[BadInput]:
    """The corpus (a fresh copy each call; bodies are JSON text unless the defect is the text)."""
    valid = json.dumps(_event())
    poison = [
        BadInput("not JSON", "{this is not json", True, "not JSON"),
        BadInput("empty body", "", True, "not JSON"),
        BadInput("whitespace", "  \n\t ", True, "not JSON"),
        BadInput("truncated JSON", valid[:200], True, "not JSON"),
        BadInput("byte-order mark", "\ufeff" + valid, True, "not JSON"),
        BadInput("deeply nested junk", "[" * 100_000 + "]" * 100_000, True, "nested too deeply"),
        BadInput(
            "lone surrogate",
            _changed(_set("detail.statusReason", "half \ud800 a pair")),
            True,
            "half of a UTF-16 surrogate pair",
        ),
        BadInput("JSON null", "null", True, "expected a JSON object"),
        BadInput("JSON array", json.dumps([_event()]), True, "expected a JSON object"),
        BadInput("JSON string", json.dumps(valid), True, "expected a JSON object"),
        BadInput("JSON number", "42", True, "expected a JSON object"),
        BadInput("no detail-type", _changed(_drop("detail-type")), True, "detail-type"),
        BadInput("no detail", _changed(_drop("detail")), True, "not an EventBridge event"),
        BadInput("no id", _changed(_drop("id")), True, "not an EventBridge event"),
        BadInput("bad time", _changed(_set("time", "yesterday")), True, "time"),
        # Its items would expire after year 9999: storing it could never succeed
        BadInput(
            "time at the end of the calendar",
            _changed(_set("time", "9999-12-31T23:59:59Z")),
            True,
            "out of range",
        ),
        # Before year 1 once moved to UTC: no key, TTL or JSON time can be written for it
        BadInput(
            "time before the calendar in UTC",
            _changed(_set("time", "0001-01-01T00:00:00+01:00")),
            True,
            "out of range",
        ),
        BadInput("resources not a list", _changed(_set("resources", "arn")), True, "resources"),
        BadInput("another source", _changed(_set("source", "aws.ec2")), True, "source is"),
        BadInput(
            "unknown detail-type",
            _changed(_set("detail-type", "Batch Job Mood Change")),
            True,
            "unknown detail-type",
        ),
        BadInput("detail is a string", _changed(_set("detail", "x")), True, "detail"),
        BadInput("detail is an array", _changed(_set("detail", [1])), True, "detail"),
        BadInput("detail is null", _changed(_set("detail", None)), True, "detail"),
        BadInput("no jobId", _changed(_drop("detail.jobId")), True, "detail.jobId is missing"),
        BadInput("jobId null", _changed(_set("detail.jobId", None)), True, "detail.jobId"),
        BadInput("jobId a number", _changed(_set("detail.jobId", 12345)), True, "detail.jobId"),
        BadInput("jobId empty", _changed(_set("detail.jobId", "")), True, "detail.jobId"),
        BadInput("jobId 10 KB", _changed(_set("detail.jobId", "j" * 10_240)), True, "bytes long"),
        BadInput("no jobName", _changed(_drop("detail.jobName")), True, "jobName"),
        BadInput(
            "jobQueue empty",
            _changed(_set("detail.jobQueue", "")),
            True,
            "jobQueue: String should have at least 1 character",
        ),
        BadInput(
            "queue ARN without a name",
            _changed(_set("detail.jobQueue", "arn:aws:batch:us-east-1:123456789012:job-queue/")),
            True,
            "jobQueue: String should match pattern",
        ),
        BadInput("no status", _changed(_drop("detail.status")), True, "status"),
        BadInput("status a number", _changed(_set("detail.status", 7)), True, "status"),
        BadInput("attempts an object", _changed(_set("detail.attempts", {})), True, "attempts"),
        BadInput("attempts a string", _changed(_set("detail.attempts", "3")), True, "attempts"),
        BadInput("attempt null", _changed(_set("detail.attempts", [None])), True, "attempts"),
        BadInput("container an array", _changed(_set("detail.container", [])), True, "container"),
        BadInput(
            "exit code a word",
            _changed(_set("detail.container.exitCode", "abc")),
            True,
            "exitCode",
        ),
        BadInput(
            "createdAt infinite", _changed(_set("detail.createdAt", 1e400)), True, "createdAt"
        ),
        BadInput(
            "retry attempts a word",
            _changed(_set("detail.retryStrategy", {"attempts": "three"})),
            True,
            "retryStrategy",
        ),
        BadInput(
            "nulls everywhere",
            json.dumps({**_event(), "detail": _nulls_everywhere(_event()["detail"])}),
            True,
            "detail.jobId",
        ),
        BadInput(
            "service job without a queue",
            _changed(_drop("detail.jobQueue"), "service-job-failed"),
            True,
            "jobQueue",
        ),
        BadInput(
            "service job with an empty queue",
            _changed(_set("detail.jobQueue", ""), "service-job-failed"),
            True,
            "jobQueue: String should have at least 1 character",
        ),
    ]
    hostile_but_valid = [
        BadInput("unicode everywhere", _changed(_unicode), False),
        BadInput("optional fields null", _changed(_optional_nulls), False),
        BadInput("junk in unknown fields", _changed(_junk_in_unknown_fields), False),
        BadInput(
            "enormous reason (1 MB)",
            _changed(_set("detail.statusReason", "Essential container exited: " + "x" * 2**20)),
            False,
        ),
        BadInput("1,000 attempts", _changed(_many_attempts), False),
        BadInput("huge environment", _changed(_huge_environment), False),
        BadInput(
            "array summary of 5,000 keys",
            _changed(_summary_with_many_keys, "array-parent-failed"),
            False,
        ),
        BadInput(
            "duplicate keys", valid[:-1] + ', "detail-type": "Batch Job State Change"}', False
        ),
    ]
    return poison + hostile_but_valid


def with_distinct_jobs(corpus: list[BadInput]) -> list[BadInput]:
    """The corpus with each valid input given its own job id (so each stores on its own)."""
    result = []
    for number, item in enumerate(corpus):
        if item.poison:
            result.append(item)
            continue
        event = json.loads(item.body)
        job_id = f"badinput-{number:04d}-0000-4000-8000-000000000000"
        event["detail"]["jobId"] = job_id
        event["detail"]["jobArn"] = event["detail"]["jobArn"].rsplit("/", 1)[0] + f"/{job_id}"
        event["id"] = f"badinput-event-{number:04d}"
        result.append(BadInput(item.name, json.dumps(event), False))
    return result
