"""`batchlens preview`: the alert bodies of AWS Batch events, rendered offline (no AWS call).

Each event is normalised as `batchlens explain` does, then rendered exactly as the enricher would
publish it: the email (subject and text), the Slack card (the Block Kit payload the notifier posts),
the Amazon Q Developer chat notification, or the JobRecord JSON that SQS and Lambda subscribers get.
`--log FILE` quotes that file's last lines as the job's log excerpt, masked like the real one, so
alerts can be seen and tuned before anything is deployed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
from typing import TextIO

from pydantic import ValidationError

from batchlens import alerts, limits, logtail, slack
from batchlens.cli import EXIT_USAGE, CliError, EventFiles, in_range
from batchlens.events import validation_problems
from batchlens.records import JobRecord
from batchlens.redact import Redactor
from batchlens.settings import Settings

FORMATS = ("email", "slack", "chatbot", "json")
#: LOG_TAIL_LINES' range in the stack (batchlens.settings).
MAX_LINES = 200
_RULE = "=" * 78


def render(record: JobRecord, output: str) -> str:
    """One channel's body for `record`, from the SNS message the enricher would publish."""
    # Cut as the enricher cuts: to the item limit when stored, then to the SNS message limit.
    alert = limits.fit_alert(limits.fit_for_store(record), alerts.build_alert)
    bodies = json.loads(alert.message)
    if output == "email":
        return f"Subject: {alert.subject}\n\n{bodies['email']}"
    if output == "chatbot":
        return json.dumps(json.loads(bodies["https"]), indent=2, ensure_ascii=False)
    published = JobRecord.model_validate_json(bodies["lambda"])  # what the notifier receives
    if output == "slack":
        return json.dumps(slack.render(published), indent=2, ensure_ascii=False)
    return json.dumps(published.to_json_dict(), indent=2, ensure_ascii=False)


def with_log(record: JobRecord, log_text: str, lines: int, redactor: Redactor) -> JobRecord:
    """`record` quoting the last `lines` lines of `log_text` as its excerpt, masked."""
    # One event a line, as CloudWatch holds a container's output: a carriage return (a progress
    # bar redrawn) stays inside its line, as `excerpt_lines` expects, where splitlines() cut it.
    excerpt, masked = logtail.excerpt_lines(log_text.split("\n"), lines, redactor)
    if not excerpt:
        return record
    return record.model_copy(update={"log_excerpt": excerpt, "redacted": record.redacted + masked})


def _log_tail(source: str, stdin: TextIO, lines: int) -> str:
    """The last `lines` lines of a log, all the enricher would read, never the whole file held."""
    # Lines end at "\n" alone: a text stream's universal newlines would end one at each "\r".
    if source == "-" and isinstance(stdin, io.TextIOWrapper):
        stdin.reconfigure(newline="\n")
    try:
        with (
            contextlib.nullcontext(stdin)
            if source == "-"
            else open(source, encoding="utf-8-sig", newline="\n")
        ) as log:
            return "".join(collections.deque(log, maxlen=max(lines, 1)))
    except OSError as exc:
        raise CliError(exc.strerror or str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"not UTF-8 text: {exc.reason}") from exc


def _lines(text: str) -> int:
    return in_range(text, int, 0, MAX_LINES, f"must be 0 to {MAX_LINES}, as LOG_TAIL_LINES")


def preview(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """Print each input event's body for the chosen channel; note events that would not alert."""
    try:
        settings = Settings.from_env()
    except ValidationError as exc:
        raise CliError(f"invalid setting in the environment: {validation_problems(exc)}") from None
    redactor = Redactor(args.allow or settings.redact_allowlist)
    if args.log is not None and not args.log.strip():  # `--log "$LOG"`, the variable unset
        raise CliError("--log needs a file (or - for standard input)")
    lines = settings.log_tail_lines if args.lines is None else args.lines
    if args.log == "-" and "-" in args.files:
        print("batchlens: preview: --log - and FILE - cannot both read standard input", file=stderr)
        return EXIT_USAGE
    try:
        log_text = _log_tail(args.log, stdin, lines) if args.log else None
    except CliError as exc:
        raise CliError(f"--log {args.log}: {exc}") from exc
    inputs = EventFiles(args.files, stdin, stderr)
    first = True
    for where, found in inputs.records(redactor):
        record = found
        # As the enricher would quote it.
        if log_text is not None and logtail.wants_excerpt(
            record, lines, settings.training_job_logs
        ):
            source = logtail.log_source(record)
            prefix = settings.job_log_group_prefix
            if source is not None and logtail.outside_prefix(source, prefix):
                print(
                    f"batchlens: {where}: note: log group {source.log_group} is outside "
                    f"JOB_LOG_GROUP_PREFIX {prefix}; the enricher would not read it (not quoted)",
                    file=stderr,
                )
            else:
                record = with_log(record, log_text, lines, redactor)
        silenced = alerts.silence_reason(record, settings)
        if silenced is not None:
            print(f"batchlens: {where}: note: {silenced} (rendered anyway)", file=stderr)
        if args.format == "email" and not first:
            print(f"\n{_RULE}\n", file=stdout)
        print(render(record, args.format), file=stdout)
        first = False
    return inputs.status


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `batchlens preview` on the CLI's subcommands."""
    p = commands.add_parser(
        "preview",
        help="render the alert bodies (email, Slack, chat, JSON) of AWS Batch events offline",
        description="Render, without calling AWS, the alert each event would publish: the email "
        "(subject and text), the Slack Block Kit card, the Amazon Q Developer chat notification, "
        "or the JobRecord JSON. Each FILE holds one event, a JSON list of events, or an SQS "
        "event; '-' reads standard input. ALERT_ON and the other settings come from the "
        "environment, as in the stack.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--format", choices=FORMATS, default="email", help="which body to render (default: email)"
    )
    p.add_argument(
        "--log",
        metavar="FILE",
        help="a job log to quote as the failure's log excerpt (its last lines, masked)",
    )
    p.add_argument(
        "--lines",
        type=_lines,
        metavar="N",
        help="log lines to quote (default: LOG_TAIL_LINES, 20; 0 turns excerpts off)",
    )
    p.add_argument(
        "--allow",
        action="append",
        metavar="NAME",
        help="a variable name never to redact (repeatable), like the RedactAllowlist parameter",
    )
    p.set_defaults(run=preview)
