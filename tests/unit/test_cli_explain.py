"""`batchlens explain` normalises events offline: one JobRecord JSON per input event, in input
order; bad input names its file (and the event's position) on stderr and exits with status 1."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from batchlens.cli import main
from tests.conftest import EVENTS_DIR, read_event

OOM = str(EVENTS_DIR / "job-failed-oom.json")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO())
    return code, out.getvalue(), err.getvalue()


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_pretty_indents_the_record() -> None:
    # Given the sample OOM event
    # When a record is explained with --pretty
    code, out, _ = run("explain", OOM, "--pretty")

    # Then it is one indented JSON document
    assert code == 0
    assert out.startswith('{\n  "schemaVersion": 1,\n  "eventType": "JOB_STATE_CHANGE",\n')
    assert json.loads(out)["jobId"] == "91d1d12f-bc0b-41ab-bc38-add9e258cb98"


def test_allow_leaves_a_named_variable_unmasked(tmp_path: Path) -> None:
    # Given a failed job whose status reason quotes a token
    event = read_event("job-failed-oom")
    event["detail"]["statusReason"] = "stopped by API_TOKEN=abc123secret"
    path = write(tmp_path / "token.json", event)

    # When it is explained, with and without --allow API_TOKEN
    _, masked, _ = run("explain", path)
    _, allowed, _ = run("explain", path, "--allow", "API_TOKEN")

    # Then the value is masked, unless its name is allowed
    assert json.loads(masked)["statusReason"] == "stopped by API_TOKEN=****"
    assert json.loads(allowed)["statusReason"] == "stopped by API_TOKEN=abc123secret"


def test_an_sqs_event_gives_one_record_per_message_body() -> None:
    # Given the sample SQS batch
    # When it (three EventBridge events as message bodies) is explained
    code, out, err = run("explain", str(EVENTS_DIR / "sqs-batch.json"))

    # Then each body is one record, in order
    assert (code, err) == (0, "")
    assert [json.loads(line)["jobId"] for line in out.splitlines()] == [
        "8db8df93-edd5-4cd5-86b3-bc355166765c",
        "91d1d12f-bc0b-41ab-bc38-add9e258cb98",
        "50ad3e27-544b-4688-8f04-70c5c0e835f7",
    ]


def test_a_bad_event_is_named_by_its_file_and_its_position_among_several(
    tmp_path: Path,
) -> None:
    # Given a file of one bad event, a list of events and an SQS event whose first and third
    # events are bad
    good = read_event("job-failed-oom")
    single = write(tmp_path / "single.json", {"source": "aws.batch"})
    listed = write(tmp_path / "list.json", [good, {"source": "aws.batch"}])
    sqs = write(
        tmp_path / "sqs.json",
        {"Records": [{"body": "{bad"}, {"body": json.dumps(good)}, {"body": "{bad"}]},
    )

    # When they are explained
    code, out, err = run("explain", single, listed, sqs)

    # Then the good events are printed, and each bad one is named: by its file when the file
    # holds one event, and with its position when the file holds several
    assert code == 1
    assert len(out.splitlines()) == 2
    assert [line.split(": ", 2)[1] for line in err.splitlines()] == [
        single,
        f"{listed}#2",
        f"{sqs}#1",
        f"{sqs}#3",
    ]


def test_a_file_with_a_utf8_bom_is_read(tmp_path: Path) -> None:
    # Given an event saved by Windows Notepad or PowerShell 5's Set-Content -Encoding UTF8
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + (EVENTS_DIR / "job-failed-oom.json").read_bytes())

    # When it is explained; then it is one record, as without the BOM
    code, out, err = run("explain", str(path))
    assert (code, err) == (0, "")
    assert json.loads(out)["jobId"] == "91d1d12f-bc0b-41ab-bc38-add9e258cb98"
