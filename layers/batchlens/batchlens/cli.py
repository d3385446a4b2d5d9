"""The `batchlens` command line.

`explain` works offline (no AWS call); `demo` runs the real pipeline on a local AWS stand-in.
Only the standard library is used here, so the console script adds nothing to the Lambda layer.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from batchlens import __version__

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
        return stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(exc.strerror or str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"not UTF-8 text: {exc.reason}") from exc


def explain(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """Normalise events offline: one JobRecord JSON per input event, in input order."""
    from batchlens.events import InvalidEvent, parse_event
    from batchlens.records import normalise
    from batchlens.redact import Redactor

    redactor = Redactor(args.allow or ())
    status = EXIT_OK
    for source in args.files:
        name = "<stdin>" if source == "-" else source
        try:
            text = _read(source, stdin)
            document = json.loads(text)
        except CliError as exc:
            print(f"batchlens: {name}: {exc}", file=stderr)
            status = EXIT_BAD_INPUT
            continue
        except ValueError as exc:
            print(f"batchlens: {name}: not JSON: {exc}", file=stderr)
            status = EXIT_BAD_INPUT
            continue
        for position, event in enumerate(_events_in(document), start=1):
            where = (
                name if position == 1 and not isinstance(document, list) else f"{name}#{position}"
            )
            try:
                record = normalise(parse_event(event), redactor=redactor)
            except InvalidEvent as exc:
                print(f"batchlens: {where}: {exc}", file=stderr)
                status = EXIT_BAD_INPUT
                continue
            indent = 2 if args.pretty else None
            print(json.dumps(record.to_json_dict(), indent=indent), file=stdout)
    return status


def demo(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    from batchlens import demo as local_demo

    if args.stop:
        return local_demo.stop(stdout)
    return local_demo.run(keep_running=args.keep_running, port=args.port, out=stdout)


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
    p.add_argument("--port", type=int, default=0, help="port for the local server (default: free)")
    p.set_defaults(run=demo)
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
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
