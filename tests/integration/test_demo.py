"""`make demo` / `demo-up` / `demo-down` around their state file: a server is never left running
that `demo-down` cannot stop, a state file whose server is gone does not block the demo, and the
demo quotes the failed jobs' logs from every group they write to.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchlens import demo

pytestmark = pytest.mark.integration

TRAINING_JOB = "AWSBatchllm-sft-7b-0314f98347b8d951353d06fa47d60957ea0f"


@pytest.fixture
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The demo's state file in a directory of the test's own; the environment the demo sets
    is restored after it."""
    path = tmp_path / ".batchlens-demo" / "state.json"
    monkeypatch.setattr(demo, "_state_file", lambda: path)
    saved = dict(os.environ)
    yield path
    os.environ.clear()
    os.environ.update(saved)


def process_group(alive: bool) -> int:
    """The id of a process group of its own, still running or already gone."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    if not alive:
        process.kill()
        process.wait()
    return process.pid


class Started(Exception):
    """Raised instead of starting the server: the demo got past its state-file check."""


def test_a_state_file_whose_server_is_gone_does_not_block_the_demo(
    state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given demo-up's state file whose detached server died (killed, or the machine rebooted)
    state_file.parent.mkdir(parents=True)
    state_file.write_text(json.dumps({"pid": process_group(alive=False), "endpointUrl": "x"}))

    def start(*_: Any, **__: Any) -> Any:
        raise Started

    monkeypatch.setattr(demo, "start_server", start)

    # When the demo runs; then it goes on to start its server, the leftover removed
    with pytest.raises(Started):
        demo.run(keep_running=False, port=0, out=io.StringIO())
    assert not state_file.exists()


def test_a_state_file_whose_server_runs_still_blocks_the_demo(state_file: Path) -> None:
    pid = process_group(alive=True)
    try:
        state_file.parent.mkdir(parents=True)
        state_file.write_text(json.dumps({"pid": pid, "endpointUrl": "http://127.0.0.1:1"}))
        out = io.StringIO()
        assert demo.run(keep_running=False, port=0, out=out) == 1
        assert "already running at http://127.0.0.1:1" in out.getvalue()
    finally:
        os.killpg(pid, 9)


def test_an_interrupted_demo_up_leaves_no_server_running(
    state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given `make demo-up` whose user presses Ctrl-C after its server started, before the state
    # file (which `demo-down` reads) is written
    started: list[subprocess.Popen[bytes]] = []
    start_server = demo.start_server

    def start(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(start_server(*args, **kwargs))
        return started[-1]

    def ctrl_c(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "start_server", start)
    monkeypatch.setattr(demo, "seed_job_logs", ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt):
            demo.run(keep_running=True, port=0, out=io.StringIO())

        # Then its server is stopped with it, and nothing is recorded as running
        (server,) = started
        assert server.wait(timeout=10) is not None
        assert not state_file.exists()
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_the_demo_quotes_each_failed_jobs_log_whatever_group_it_logs_to(
    state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the sample jobs, logging to Batch's default group and to /custom/batch/genomics, and
    # the service job's training job to SageMaker's group
    out = io.StringIO()
    # (and a note of where the handler's prints go while it runs: Powertools prints its
    # ColdStart metric document whatever POWERTOOLS_METRICS_DISABLED says)
    printed_to: list[object] = []

    def delivering(*args: Any, **kwargs: Any) -> tuple[int, int]:
        printed_to.append(sys.stdout)
        return deliver(*args, **kwargs)

    deliver = demo.deliver
    monkeypatch.setattr(demo, "deliver", delivering)

    # When the whole demo runs
    assert demo.run(keep_running=False, port=0, out=out) == 0

    # Then each failed job that ran has its last lines quoted in its email, from either group
    # (the demo stack's JobLogGroupPrefix is "/"), and the stand-in is stopped
    text = out.getvalue()
    quoted = re.findall(r"^Last \d+ log lines of attempt \d+ \((\S+) (\S+)\):$", text, re.M)
    assert sorted(quoted) == [
        ("/aws/batch/job", "clickstream-hourly/default/65984e656b3a11dfce24d109577afdc5"),
        ("/aws/batch/job", "invoice-export/default/c3ae1a2bfd3a8b0408157f32c88d6dae"),
        ("/aws/sagemaker/TrainingJobs", f"{TRAINING_JOB}/algo-1-1741950729"),
        ("/custom/batch/genomics", "genomics-align/default/d651b1d9e8ff2f7a0b344198daf25ac0"),
    ]
    assert "\n  | Killed\n" in text
    assert "HF_TOKEN=**** WANDB_MODE=offline" in text
    assert not state_file.exists()
    # And it says why its records hold their events' detail; the handler printed to no terminal
    assert "Enrichment of the alerts' records: 1 EVENT_ONLY, 5 NOT_FOUND. moto's Batch" in text
    assert printed_to
    assert all(isinstance(stream, io.StringIO) and stream is not out for stream in printed_to)


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("DescribeServiceJob failed for 2 jobs; using the events' own detail", False),
        ("DescribeJobs failed for 3 jobs; using the events' own detail", True),
        ("No log excerpt: AccessDeniedException", True),
    ],
)
def test_the_demo_hides_only_the_warning_its_note_explains(message: str, shown: bool) -> None:
    # Given a warning of the enricher's; then the demo shows it unless it is the stand-in's
    # missing DescribeServiceJob (its enrichment note says so instead)
    record = logging.LogRecord("batchlens", logging.WARNING, __file__, 1, message, None, None)
    assert demo._STAND_IN_GAP.filter(record) is shown
