"""Log excerpts: the last lines of a failed job's latest attempt, quoted in its alert.

Adapter module (CloudWatch Logs I/O through the `logs` client it is given) around two pure
functions, `excerpt_lines` and `training_stream`. The latest attempt that has a log stream is read
from its end with GetLogEvents (`startFromHead=False`); a SageMaker training job's attempt has no
stream name in Batch's record, so its stream is first found with DescribeLogStreams. Secrets are
masked with the Redactor; lines and the whole excerpt are cut to fit every channel. A missing
stream, a denied read or any other error leaves the record without an excerpt: it never blocks the
alert.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from batchlens.records import SAGEMAKER_LOG_GROUP, JobRecord, training_job_name
from batchlens.redact import MASK, Redactor
from batchlens.text import printable

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import (
        DescribeLogStreamsRequestTypeDef,
        GetLogEventsRequestTypeDef,
        LogStreamTypeDef,
    )

logger = logging.getLogger("batchlens")

#: Longest line kept (the rest is cut with an ellipsis), and the most characters in all.
MAX_LINE_CHARS = 400
MAX_EXCERPT_CHARS = 2_500
#: GetLogEvents may answer an empty page while older events exist; follow it this many times.
MAX_PAGES = 3
#: The pipeline waits this long for excerpts, and skips them with less invocation time left.
FETCH_TIMEOUT_SECONDS = 5.0
MIN_REMAINING_MS = 15_000

#: A private key, the one secret that spans lines: masked whole (to the end of the text without
#: an END line, as the Redactor does) before the lines are masked one by one.
_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r".*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
#: The last events can start inside a private key, below its BEGIN line: mask up to its END line.
_KEY_TAIL = re.compile(r"\A.*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----", re.DOTALL)


#: A carriage return kept through masking (`printable` drops control characters): the masks see
#: a line redrawn by a progress bar whole, then it shows its last state, as a terminal does.
_CR = "\ue000"

#: SageMaker names a training job's streams "<training job>/algo-<host>-<epoch seconds>".
_TRAINING_STREAM = re.compile(r"/algo-(?P<host>[0-9]+)-[0-9]+$")
#: The streams DescribeLogStreams lists at once: one per host and restart of a training job.
TRAINING_STREAMS_LISTED = 50
#: Pages of the group's most recently written streams searched, ignoring case, for a training job
#: whose ARN shows no upper-case letter (see `_name_as_created`).
RECENT_PAGES = 2


@dataclass(frozen=True, slots=True)
class LogSource:
    """Where an attempt's log lives: a stream, or a training job whose streams hold it."""

    attempt: int
    log_group: str
    log_stream: str | None
    #: A SageMaker training job's name: its stream is looked up (see `training_stream`).
    training_job: str | None = None
    #: The Region the attempt's log link opens; None: the job's own.
    region: str | None = None


def log_source(record: JobRecord) -> LogSource | None:
    """The latest attempt that wrote to a known log stream, or ran a SageMaker training job."""
    for attempt in reversed(record.attempts):
        if attempt.log_group and attempt.log_stream_name:
            return LogSource(
                attempt.number,
                attempt.log_group,
                attempt.log_stream_name,
                region=_link_region(attempt.log_url),
            )
        if name := training_job_name(attempt):
            return LogSource(attempt.number, SAGEMAKER_LOG_GROUP, None, training_job=name)
    return None


def _link_region(log_url: str | None) -> str | None:
    """The Region a log link opens (its `region` query): an `awslogs-region` option can name
    another Region than the job's, and the link is where the record keeps it."""
    regions = parse_qs(urlsplit(log_url).query).get("region") if log_url else None
    return regions[0] if regions else None


def wants_excerpt(record: JobRecord, lines: int, training_jobs: bool = True) -> bool:
    """Worth reading a log: a failure, excerpts turned on, and a stream to read (or a training
    job's, when `training_jobs`: the stack's TrainingJobLogs lets the role find and read it)."""
    if (
        lines <= 0
        or record.failure is None
        or record.event_type.is_queue_blocked
        or record.log_excerpt
    ):
        return False
    source = log_source(record)
    return source is not None and (source.training_job is None or training_jobs)


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"


def _last_drawn(line: str) -> str:
    """The last non-blank state of a line redrawn with carriage returns (`_CR`)."""
    return next((part for part in reversed(line.split(_CR)) if part.strip()), "")


def excerpt_lines(
    messages: Iterable[str], lines: int, redactor: Redactor | None = None
) -> tuple[list[str], int]:
    """The last `lines` lines of log `messages`, masked and cut to fit; and how many were masked.

    A private key, which spans lines, is masked whole across them; every other secret line by
    line: a line that ends in a secret's name (argparse's "required: --api-key", an empty
    `DB_PASSWORD=`) does not make the next line its value. Terminal colour codes and control
    characters go first; tabs become spaces.
    """
    if lines <= 0:
        return [], 0
    redactor = redactor or Redactor()
    text = "\n".join(message.rstrip("\r\n") for message in messages)
    text = text.replace("\r\n", "\n").replace(_CR, "").replace("\r", _CR)
    # Colour codes go before masking: "\x1b[36mAKIA…" has no word boundary before the key.
    plain = printable(text.replace("\t", "    "))
    plain, count = _KEY_BLOCK.subn(MASK, plain)
    # Whole keys are masked by now, so an END line left is that of a key begun above the window.
    plain, tails = _KEY_TAIL.subn(MASK, plain, count=1)
    count += tails
    all_lines = plain.split("\n")
    # A mask is never blank, so a line's blankness is known before masking: only the lines shown
    # are masked (a read can bring thousands) and counted.
    while all_lines and not _last_drawn(all_lines[-1]).strip():
        all_lines.pop()
    tail: list[tuple[str, int]] = []
    for line in all_lines[-lines:]:
        masked, masks = redactor.text(line)
        tail.append((_clip(_last_drawn(masked).rstrip()), masks))
    while tail and sum(len(line) + 1 for line, _ in tail) > MAX_EXCERPT_CHARS:
        tail.pop(0)  # the newest lines matter most: drop from the top
    while tail and not tail[0][0]:
        tail.pop(0)
    return [line for line, _ in tail], count + sum(masks for _, masks in tail)


def training_stream(streams: Iterable[LogStreamTypeDef]) -> str | None:
    """The stream to quote among a training job's: the first host's (algo-1, which every training
    job has), its newest one if it has several (a restarted job)."""

    def rank(stream: LogStreamTypeDef) -> tuple[int, int]:
        named = _TRAINING_STREAM.search(stream.get("logStreamName", ""))
        host = int(named["host"]) if named else 1 << 30
        return -host, stream.get("creationTime", 0)

    listed = [stream for stream in streams if stream.get("logStreamName")]
    return max(listed, key=rank)["logStreamName"] if listed else None


def _find_training_stream(client: CloudWatchLogsClient, training_job: str) -> str | None:
    found = _leader_stream(client, training_job)
    if found is None and training_job == training_job.lower():
        # SageMaker lower-cases the names in some of its ARNs, while its streams keep the name as
        # created (Batch's start with "AWSBatch"): a name without upper-case letters may be one.
        named = _name_as_created(client, training_job)
        if named is not None and named != training_job:
            logger.info(
                "Training job %s is named %s in its log streams: its ARN lower-cased the name",
                training_job,
                named,
                extra={"training_job": named},
            )
            found = _leader_stream(client, named)
    return found


def _leader_stream(client: CloudWatchLogsClient, training_job: str) -> str | None:
    # The "/" keeps job "train-1" from finding the streams of "train-10". Streams are listed by
    # name, so a leader's (algo-1-…) come first.
    prefix = f"{training_job}/"
    page = client.describe_log_streams(
        logGroupName=SAGEMAKER_LOG_GROUP, logStreamNamePrefix=prefix, limit=TRAINING_STREAMS_LISTED
    )
    streams = page.get("logStreams", [])
    return training_stream(s for s in streams if s.get("logStreamName", "").startswith(prefix))


def _name_as_created(client: CloudWatchLogsClient, training_job: str) -> str | None:
    """`training_job` as its streams spell it, ignoring case, among the group's streams written
    last (a name prefix cannot be case-insensitive, nor combined with that order)."""
    request: DescribeLogStreamsRequestTypeDef = {
        "logGroupName": SAGEMAKER_LOG_GROUP,
        "orderBy": "LastEventTime",
        "descending": True,
        "limit": TRAINING_STREAMS_LISTED,
    }
    for _ in range(RECENT_PAGES):
        page = client.describe_log_streams(**request)
        for listed in page.get("logStreams", []):
            name = listed.get("logStreamName", "").partition("/")[0]
            if name.lower() == training_job:
                return name
        token = page.get("nextToken")
        if not token:
            break
        request["nextToken"] = token
    return None


def _read_tail(
    client: CloudWatchLogsClient, source: LogSource, stream: str, lines: int
) -> list[str]:
    request: GetLogEventsRequestTypeDef = {
        "logGroupName": source.log_group,
        "logStreamName": stream,
        "startFromHead": False,
        "limit": min(max(lines, 1), 10_000),
    }
    # Pages are split by time: a partial (or empty) page does not mean the stream is done, only
    # the same token handed back does. Older pages go before newer ones.
    pages: list[list[str]] = []
    found = 0
    for _ in range(MAX_PAGES):
        try:
            page = client.get_log_events(**request)
        except Exception:
            if not pages:
                raise
            break  # an older page failed: the newer lines read still make an excerpt
        messages = [event.get("message", "") for event in page.get("events", [])]
        if messages:
            pages.insert(0, messages)
            # A message's own line break ends its line, as `excerpt_lines` reads it.
            found += sum(message.rstrip("\r\n").count("\n") + 1 for message in messages)
            if found >= lines:
                break
        token = page.get("nextBackwardToken")
        if not token or token == request.get("nextToken"):
            break
        request["nextToken"] = token
    return [message for page in pages for message in page]


def outside_prefix(source: LogSource, log_group_prefix: str) -> bool:
    """A job's log group outside the stack's JobLogGroupPrefix, which scopes the role's
    `logs:GetLogEvents` (empty: any group): IAM would refuse the read. Training jobs' logs have
    their own grant (TrainingJobLogs), whatever the prefix."""
    return source.training_job is None and not source.log_group.startswith(log_group_prefix)


def fetch_excerpt(
    client: CloudWatchLogsClient,
    record: JobRecord,
    lines: int,
    redactor: Redactor,
    log_group_prefix: str = "",
) -> JobRecord:
    """`record` with `logExcerpt` set from its latest attempt's log, or unchanged when none, or
    when its log group is outside `log_group_prefix` (see `outside_prefix`)."""
    source = log_source(record)
    if lines <= 0 or source is None:
        return record
    if outside_prefix(source, log_group_prefix):
        logger.info(
            "No log excerpt: log group %s is outside JobLogGroupPrefix %s",
            source.log_group,
            log_group_prefix,
            extra={"job_id": record.job_id, "log_group": source.log_group},
        )
        return record
    if source.region is not None and source.region != client.meta.region_name:
        # The role may read its own Region's job logs only; the read would fail after a call.
        logger.info(
            "No log excerpt: log group %s is in %s, not in the stack's Region %s",
            source.log_group,
            source.region,
            client.meta.region_name,
            extra={"job_id": record.job_id, "log_group": source.log_group},
        )
        return record
    try:
        stream = source.log_stream
        if stream is None and source.training_job is not None:
            stream = _find_training_stream(client, source.training_job)
        if stream is None:
            # SageMaker writes no stream when a job fails before its algorithm starts.
            logger.info(
                "No log excerpt: no log stream for training job %s",
                source.training_job,
                extra={"job_id": record.job_id, "log_group": source.log_group},
            )
            return record
        messages = _read_tail(client, source, stream, lines)
    except Exception as exc:  # no excerpt is better than no alert
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        level = logging.INFO if code == "ResourceNotFoundException" else logging.WARNING
        logger.log(
            level,
            "No log excerpt: %s",
            code,
            extra={"job_id": record.job_id, "log_group": source.log_group, "error": code},
        )
        return record
    excerpt, masked = excerpt_lines(messages, lines, redactor)
    if not excerpt:
        return record
    update: dict[str, object] = {"log_excerpt": excerpt, "redacted": record.redacted + masked}
    if source.log_stream is None:  # a training job's: name the stream quoted, as Batch does
        update["attempts"] = [
            a.model_copy(update={"log_stream_name": stream}) if a.number == source.attempt else a
            for a in record.attempts
        ]
    return record.model_copy(update=update)
