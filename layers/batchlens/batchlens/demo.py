"""`batchlens demo`: the real pipeline on this machine, with moto's server standing in for AWS.

EventBridge → SQS → the real handler (functions/enrich/app.py) → DynamoDB and SNS, all on loopback.
Sample events from events/ are sent with their times moved to now, so the history table reads like a
live account's. Local tooling only: needs the dev dependencies (moto[server], pyyaml).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from batchlens import alerts, local, slack
from batchlens import template as cfn
from batchlens.events import parse_event
from batchlens.history import HistoryTable
from batchlens.records import (
    Attempt,
    JobRecord,
    normalise,
    training_job_name,
    training_log_stream,
)

#: The sample events the demo sends, in the order a busy account might produce them.
DEMO_EVENTS = (
    "job-running.json",
    "job-succeeded.json",
    "job-failed-oom.json",
    "job-failed-spot.json",
    "job-failed-image-pull.json",
    "job-failed-app-error.json",
    "array-child-failed.json",
    "service-job-succeeded.json",
    "service-job-failed.json",
    "job-queue-blocked-capacity.json",
)
STACK_NAME = "batchlens-demo"
#: The sample jobs log both to Batch's default group (/aws/batch/job) and to a group of their own
#: (/custom/batch/genomics), so the demo stack may read every group whose name starts with `/`, as
#: a user would deploy with `--parameter-overrides JobLogGroupPrefix=/` for jobs that log to
#: groups of their own.
STACK_PARAMETERS = {"JobLogGroupPrefix": "/"}
#: What a sample job without a sample log (events/<name>.log) wrote.
_GENERIC_LOG = ("starting", "working", "done")
_TIME_FIELDS = frozenset({"createdAt", "startedAt", "stoppedAt", "scheduledAt"})


class DemoError(Exception):
    """The demo cannot run (its port, its stand-in, its state file): one line for a person."""


def repository_root() -> Path:
    return cfn.default_template_path().parent


def sample_log(event_file: str) -> tuple[str, ...]:
    """What the sample job of `event_file` wrote to its log: events/<name>.log, so that alerts
    quote real lines (and `preview --log` has the same file to quote)."""
    path = repository_root() / "events" / event_file.replace(".json", ".log")
    return tuple(path.read_text(encoding="utf-8").splitlines()) if path.exists() else _GENERIC_LOG


def _state_file() -> Path:
    return repository_root() / ".batchlens-demo" / "state.json"


def _read_state(state_file: Path) -> dict[str, Any] | None:
    """demo-up's record of its server, or None; a damaged one (cut short) counts as none."""
    try:
        text = state_file.read_text()
    except OSError:  # none (or none that can be read: start_server says why)
        return None
    try:
        state = json.loads(text)
        state["pid"] = int(state["pid"])
        state["endpointUrl"] = str(state["endpointUrl"])
    except (ValueError, KeyError, TypeError):
        state_file.unlink(missing_ok=True)
        return None
    return state if isinstance(state, dict) else None


def _is_demo_server(pid: int) -> bool:
    """Whether `pid` is still demo-up's server, not a process given its id since (a reboot)."""
    if not _running(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):
        try:
            command = subprocess.run(  # noqa: S603 - fixed arguments
                ["ps", "-o", "command=", "-p", str(pid)],  # noqa: S607
                capture_output=True,
                text=True,
                check=False,
                timeout=5,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return True  # cannot tell: as before, trust the pid
    return "moto.server" in command


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _running(pid: int) -> bool:
    """Whether the detached server's process group still exists (a zombie waiting for its
    parent to reap it has ended)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    try:
        # /proc/<pid>/stat: "pid (command) state ...", the command in parentheses may hold any.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust the signal
    return state != "Z"


def _wait_for(
    port: int, seconds: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise DemoError(f"the local AWS stand-in exited (code {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise DemoError(f"the local AWS stand-in did not start on 127.0.0.1:{port}")


def start_server(port: int, log_path: Path, detach: bool) -> subprocess.Popen[bytes]:
    """moto's server on loopback only; detached when it must outlive this process."""
    if port and _port_in_use(port):
        raise DemoError(f"port {port} on 127.0.0.1 is in use; pick another --port, or omit it")
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
    except OSError as exc:
        raise DemoError(f"cannot write {log_path}: {exc.strerror or exc}") from exc
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=detach,
    )
    try:
        _wait_for(port, process=process)
    except DemoError as exc:
        process.kill()
        raise DemoError(f"{exc}; see {log_path}") from None
    except BaseException:  # not started, or Ctrl-C while waiting
        process.kill()
        raise
    return process


def shift_to_now(event: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """The event with every job timestamp moved so that its latest one is `now_ms`."""
    latest = max(_timestamps(event["detail"]), default=now_ms)
    offset = now_ms - latest

    def move(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: move(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [move(item) for item in value]
        if key in _TIME_FIELDS and isinstance(value, int):
            return value + offset
        return value

    shifted = dict(event)
    shifted["detail"] = move(event["detail"])
    return shifted


def _timestamps(value: Any, key: str | None = None) -> Iterator[int]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _timestamps(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _timestamps(item)
    elif key in _TIME_FIELDS and isinstance(value, int):
        yield value


def load_handler(root: Path) -> ModuleType:
    """The enricher's real handler module, loaded from its CodeUri like `sam build` would."""
    path = root / "functions" / "enrich" / "app.py"
    spec = importlib.util.spec_from_file_location("batchlens_enricher_app", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the handler from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed_job_logs(session: Any, endpoint_url: str, events: Mapping[str, Mapping[str, Any]]) -> int:
    """Write each sample job's log stream (what its container printed), as CloudWatch Logs holds it.

    The enricher then reads real lines back with GetLogEvents for the alerts' log excerpts.
    """
    logs = session.client("logs", endpoint_url=endpoint_url)
    groups: set[str] = set()
    streams = 0
    now_ms = int(time.time() * 1000)
    for name, event in events.items():
        record = normalise(parse_event(dict(event)))
        for attempt in record.attempts:
            stream = attempt.log_stream_name or _training_stream(attempt)
            if not (attempt.log_group and stream):
                continue
            if attempt.log_group not in groups:
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    logs.create_log_group(logGroupName=attempt.log_group)
                groups.add(attempt.log_group)
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_stream(logGroupName=attempt.log_group, logStreamName=stream)
            lines = sample_log(name)
            logs.put_log_events(
                logGroupName=attempt.log_group,
                logStreamName=stream,
                logEvents=[
                    {"timestamp": now_ms - (len(lines) - i) * 1000, "message": line}
                    for i, line in enumerate(lines)
                ],
            )
            streams += 1
    return streams


def _training_stream(attempt: Attempt) -> str | None:
    """The stream SageMaker writes for the first host of an attempt's training job."""
    name = training_job_name(attempt)
    if name is None or attempt.started_at is None:
        return None
    return training_log_stream(name, 1, int(attempt.started_at.timestamp()))


def _environment(endpoint_url: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": local.REGION,
        "AWS_REGION": local.REGION,
        "BATCHLENS_ENDPOINT_URL": endpoint_url,
    }


def deliver(
    session: Any, stack: local.LocalStack, handler: ModuleType, max_batches: int = 50
) -> tuple[int, int]:
    """Drain the event queue through the handler as Lambda's SQS poller would."""
    sqs = session.client("sqs", endpoint_url=stack.endpoint_url)
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=stack.event_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    delivered = failed = 0
    for _ in range(max_batches):
        messages = sqs.receive_message(
            QueueUrl=stack.event_queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        response = handler.handler(local.sqs_event(messages, queue_arn), local.FakeLambdaContext())
        failures = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] in failures:
                failed += 1
                continue
            delivered += 1
            sqs.delete_message(
                QueueUrl=stack.event_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return delivered, failed


class _StandInGap(logging.Filter):
    """Drops the enricher's warning that DescribeServiceJob failed: moto does not implement it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("DescribeServiceJob failed")


_STAND_IN_GAP = _StandInGap()


def enrichment_note(records: Iterable[JobRecord]) -> str:
    """Why the demo's records hold their events' own detail: the stand-in describes no job."""
    counts = Counter(record.enrichment.value for record in records)
    found = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    return textwrap.fill(
        f"Enrichment of the alerts' records: {found or 'none'}. moto's Batch never ran these "
        "sample jobs (DescribeJobs finds none) and has no DescribeServiceJob, so each record "
        "keeps its event's own detail, as in AWS for a job DescribeJobs no longer knows or a "
        "describe call that failed.",
        width=100,
    )


def published_alerts(session: Any, stack: local.LocalStack) -> list[JobRecord]:
    """What an SQS subscriber of the topic received: one JobRecord per alert."""
    sqs = session.client("sqs", endpoint_url=stack.endpoint_url)
    records = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            envelope = json.loads(message["Body"])
            records.append(JobRecord.model_validate(json.loads(envelope["Message"])))
            sqs.delete_message(
                QueueUrl=stack.alert_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return records


def failed_jobs(session: Any, stack: local.LocalStack, day: str) -> list[dict[str, Any]]:
    """Failed jobs of `day`, newest first, from the byDay index (the CLI's access pattern)."""
    dynamodb = session.client("dynamodb", endpoint_url=stack.endpoint_url)
    history = HistoryTable(dynamodb, stack.table_name, stack.settings().retention_days)
    items = history.query_latest("byDay", "gsi2pk = :pk", {":pk": {"S": f"D#{day}#FAILED"}})
    return [item["record"] for item in items]


@contextlib.contextmanager
def _signals_stop_the_demo() -> Iterator[None]:
    """SIGTERM and SIGHUP (`timeout`, a CI cancel, a closed terminal) end the demo as Ctrl-C
    does, so that its stand-in is stopped with it."""

    def end(signum: int, _: Any) -> None:
        raise SystemExit(128 + signum)

    saved = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            saved[signum] = signal.signal(signum, end)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def run(*, keep_running: bool, port: int, out: TextIO) -> int:
    with _signals_stop_the_demo():
        return _run(keep_running=keep_running, port=port, out=out)


def _run(*, keep_running: bool, port: int, out: TextIO) -> int:
    import boto3

    root = repository_root()
    state_file = _state_file()
    state = _read_state(state_file)
    if state is not None and not _is_demo_server(state["pid"]):
        state_file.unlink()  # a leftover: its server is gone (killed, or a reboot)
        state = None
    if state is not None:
        print(
            f"A demo stack is already running at {state['endpointUrl']}; "
            "stop it first with `make demo-down`.",
            file=out,
        )
        return 1
    port = port or _free_port()
    endpoint_url = f"http://127.0.0.1:{port}"
    server = start_server(port, state_file.parent / "server.log", detach=keep_running)
    recorded = False  # only a server recorded in the state file may outlive this run
    try:
        os.environ.update(_environment(endpoint_url))
        session = boto3.Session(region_name=local.REGION)
        stack = local.create_stack(
            session, endpoint_url=endpoint_url, name=STACK_NAME, parameters=STACK_PARAMETERS
        )
        os.environ.update(stack.environment)
        # The handler's structured logs would drown the demo's output; warnings still show, but
        # for the stand-in's missing DescribeServiceJob, which the demo explains itself below.
        os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        logging.getLogger("batchlens").addFilter(_STAND_IN_GAP)
        # Its EMF metric documents too (printed to stdout, where Lambda turns them into metrics).
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"

        now_ms = int(time.time() * 1000)
        events_dir = root / "events"
        events = {name: json.loads((events_dir / name).read_text()) for name in DEMO_EVENTS}
        streams = seed_job_logs(session, endpoint_url, events)
        print(f"Wrote the sample jobs' logs to {streams} CloudWatch Logs streams.", file=out)
        for event in events.values():
            local.put_batch_event(session, endpoint_url, shift_to_now(event, now_ms))
        print(
            f"Sent {len(DEMO_EVENTS)} sample AWS Batch events through EventBridge "
            f"(local stand-in at {endpoint_url}).",
            file=out,
        )

        handler = load_handler(root)
        # Powertools prints its ColdStart metric document whatever POWERTOOLS_METRICS_DISABLED
        # says (single_metric does not read it); the handler prints nothing else.
        with contextlib.redirect_stdout(io.StringIO()):
            delivered, failed = deliver(session, stack, handler)
        print(f"Enricher processed {delivered} records ({failed} failed).", file=out)

        records = published_alerts(session, stack)
        print(enrichment_note(records) + "\n", file=out)
        print(
            f"=== {len(records)} alerts published to SNS: the email, then the Slack card ===\n",
            file=out,
        )
        for record in records:
            print(f"Subject: {alerts.subject(record)}", file=out)
            print("-" * 78, file=out)
            print(alerts.email_text(record), file=out)
            print("-" * 78, file=out)
            print("Slack card (Block Kit JSON, as the Slack notifier posts it):", file=out)
            print(json.dumps(slack.render(record), indent=2, ensure_ascii=False), file=out)
            print("=" * 78 + "\n", file=out)

        day = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
        print(f"=== Failed jobs in the history table ({stack.table_name}) ===", file=out)
        for job in failed_jobs(session, stack, day):
            failure = job.get("failure") or {}
            print(
                f"  {job['jobName']:<32} {job['jobQueue']['name']:<20} "
                f"{failure.get('category', '-'):<24} {failure.get('summary', '')}",
                file=out,
            )
        if keep_running:
            try:
                # "x": another demo-up that finished meanwhile keeps its record (and its server)
                recording = state_file.open("x")
            except FileExistsError:
                print(
                    "\nAnother demo stack was started meanwhile; stopped this one. "
                    "Stop that one with `make demo-down`.",
                    file=out,
                )
                return 1
            with recording:
                recording.write(
                    json.dumps(
                        {
                            "pid": server.pid,
                            "endpointUrl": endpoint_url,
                            "tableName": stack.table_name,
                            "topicArn": stack.topic_arn,
                            "eventQueueUrl": stack.event_queue_url,
                        },
                        indent=2,
                    )
                )
            recorded = True
            print(
                f"\nThe local stack keeps running at {endpoint_url}. Query it with:\n"
                f"  export BATCHLENS_TABLE={stack.table_name} "
                f"BATCHLENS_ENDPOINT_URL={endpoint_url}\n"
                "Stop it with `make demo-down`.",
                file=out,
            )
        return 0 if failed == 0 else 1
    finally:
        # The demo may run inside a longer process (a test session): leave its logger as found.
        logging.getLogger("batchlens").removeFilter(_STAND_IN_GAP)
        if not recorded:
            server.terminate()
            server.wait(timeout=10)


def stop(out: TextIO) -> int:
    state_file = _state_file()
    state = _read_state(state_file)
    if state is None or not _is_demo_server(state["pid"]):
        state_file.unlink(missing_ok=True)  # a leftover: its server is gone
        print("No demo stack is running.", file=out)
        return 0
    _end(state["pid"])
    state_file.unlink()
    print(f"Stopped the demo stack at {state['endpointUrl']}.", file=out)
    return 0


#: How long demo-down waits for the server to exit after SIGTERM before it sends SIGKILL.
STOP_WAIT_SECONDS = 10.0


def _end(pid: int) -> None:
    """Stop the server's process group and wait until it is gone: a `demo-up` right after
    `demo-down` must find its port free and no server answering there."""
    for signum, seconds in ((signal.SIGTERM, STOP_WAIT_SECONDS), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signum)
        deadline = time.monotonic() + seconds
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _running(pid):
            return
