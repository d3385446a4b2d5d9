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


def stand_in_group() -> int:
    """The id of a running process group whose command line is the demo server's."""
    import time

    idle = "import time; time.sleep(60)  # moto.server"
    pid = subprocess.Popen([sys.executable, "-c", idle], start_new_session=True).pid
    deadline = time.monotonic() + 5  # until its command line shows (just after exec it may not)
    cmdline = Path(f"/proc/{pid}/cmdline")
    while cmdline.exists() and b"moto" not in cmdline.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid


def test_a_state_file_whose_server_runs_still_blocks_the_demo(state_file: Path) -> None:
    pid = stand_in_group()
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


# --- review: the demo's stand-in, its port and its state file ---------------------------------


def cli_demo(*argv: str) -> tuple[int, str, str]:
    from batchlens.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["demo", *argv], stdout=out, stderr=err, stdin=io.StringIO())
    return code, out.getvalue(), err.getvalue()


def test_a_port_in_use_is_refused_not_used(state_file: Path) -> None:
    # Given a port another server listens on (LocalStack on 4566, another user's demo-up)
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    other = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    port = other.server_address[1]
    try:
        # When the demo is asked to use it
        code, out, err = cli_demo("--port", str(port))
    finally:
        other.shutdown()
        other.server_close()

    # Then it says so in one line, and never sent that server the stack's calls
    assert code != 0
    assert f"port {port}" in err
    assert len(err.splitlines()) == 1
    assert "Wrote the sample jobs' logs" not in out


@pytest.mark.parametrize("port", ["70000", "-5"])
def test_a_port_out_of_range_is_a_usage_error(port: str, state_file: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli_demo("--port", port)
    assert exit_.value.code == 2


@pytest.mark.parametrize("saved", ["", "{", '{"endpointUrl": "http://127.0.0.1:1"}'])
def test_a_damaged_state_file_blocks_neither_demo_nor_demo_down(
    saved: str, state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a state file cut short (a full disk, a crash while it was written)
    state_file.parent.mkdir(parents=True)
    state_file.write_text(saved)

    # When demo-down, then the demo, run; then neither fails with a traceback
    assert cli_demo("--stop")[0] == 0
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(saved)

    def start(*_: Any, **__: Any) -> Any:
        raise Started

    monkeypatch.setattr(demo, "start_server", start)
    with pytest.raises(Started):
        demo.run(keep_running=False, port=0, out=io.StringIO())


def test_demo_down_signals_no_process_that_took_the_servers_id(state_file: Path) -> None:
    # Given demo-up's state file after a reboot: its pid is now another program's process group
    program = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        state_file.parent.mkdir(parents=True)
        state_file.write_text(json.dumps({"pid": program.pid, "endpointUrl": "http://127.0.0.1:1"}))

        # When demo-down runs
        code, _, _ = cli_demo("--stop")

        # Then that program is left alone, and the leftover state file is gone
        assert code == 0
        with pytest.raises(subprocess.TimeoutExpired):
            program.wait(timeout=1)
        assert not state_file.exists()
    finally:
        program.kill()
        program.wait()


#: A stand-in for demo-up's server ("moto.server" on its command line) that takes 2 s to exit
#: after SIGTERM, as a server finishing its requests would.
SLOW_TO_STOP = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(2), sys.exit(0)))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def test_demo_down_returns_once_the_server_is_gone(state_file: Path) -> None:
    # Given demo-up's state file naming a server that takes a while to exit after SIGTERM
    server = subprocess.Popen(
        [sys.executable, "-c", SLOW_TO_STOP, "moto.server"],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline() == b"ready\n"  # its SIGTERM handler is in place
        state_file.parent.mkdir(parents=True)
        state_file.write_text(json.dumps({"pid": server.pid, "endpointUrl": "http://127.0.0.1:1"}))

        # When demo-down runs
        code, out, _ = cli_demo("--stop")

        # Then it returned only after the server had exited (a demo-up right after finds the
        # port free), and said so
        assert code == 0
        assert server.poll() is not None
        assert "Stopped the demo stack" in out
        assert not state_file.exists()
    finally:
        server.kill()
        server.wait()


def test_demo_down_of_a_server_id_owned_by_another_user_is_one_line(
    state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a state file whose pid now names a process group of another user's (a reboot), so
    # that `demo` says "already running, stop it first with make demo-down"
    state_file.parent.mkdir(parents=True)
    state_file.write_text(json.dumps({"pid": 424242, "endpointUrl": "http://127.0.0.1:1"}))

    def not_yours(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "killpg", not_yours)

    # When demo-down runs; then it does not end in a traceback
    code, _, err = cli_demo("--stop")
    assert code in (0, 1)
    assert len(err.splitlines()) <= 1


def test_a_second_demo_up_does_not_lose_the_first_ones_server(
    state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two `make demo-up` at once: the other one records its server while this one runs
    other = process_group(alive=True)
    started: list[subprocess.Popen[bytes]] = []
    start_server = demo.start_server

    def start(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(start_server(*args, **kwargs))
        return started[-1]

    def other_demo_up_finishes(*_: Any, **__: Any) -> int:
        state_file.write_text(json.dumps({"pid": other, "endpointUrl": "http://127.0.0.1:2"}))
        return 0

    monkeypatch.setattr(demo, "start_server", start)
    monkeypatch.setattr(demo, "seed_job_logs", other_demo_up_finishes)
    try:
        demo.run(keep_running=True, port=0, out=io.StringIO())

        # Then the state file still names the other server (demo-down can stop it), and this
        # run's server, recorded nowhere, is not left running
        assert json.loads(state_file.read_text())["pid"] == other
        (server,) = started
        assert server.wait(timeout=10) is not None
    finally:
        os.killpg(other, 9)
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait()


_HANGING_DEMO = """
import sys, time
from pathlib import Path
from batchlens import cli, demo

demo._state_file = lambda: Path(sys.argv[1])
start_server = demo.start_server
servers = []

def start(*args, **kwargs):
    servers.append(start_server(*args, **kwargs))
    return servers[-1]

def hang(*args, **kwargs):
    print(servers[-1].pid, flush=True)
    time.sleep(60)

demo.start_server = start
demo.seed_job_logs = hang
sys.exit(cli.main(["demo", *sys.argv[2:]]))
"""


@pytest.mark.parametrize("keep_running", [True, False])
@pytest.mark.parametrize(
    "signum", [15, 1]
)  # SIGTERM (`timeout`, a CI cancel), SIGHUP (a closed terminal)
def test_a_demo_ended_by_a_signal_leaves_no_server_running(
    keep_running: bool, signum: int, state_file: Path
) -> None:
    # Given a demo (or demo-up) whose stand-in has started
    argv = ["--keep-running"] if keep_running else []
    process = subprocess.Popen(
        [sys.executable, "-c", _HANGING_DEMO, str(state_file), *argv],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    server = int(process.stdout.readline())
    try:
        # When it is sent SIGTERM or SIGHUP rather than Ctrl-C
        process.send_signal(signum)
        process.wait(timeout=20)

        # Then its stand-in stops with it (nothing records it, so demo-down could not)
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(server, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the stand-in (pid {server}) outlived the demo")
        assert not state_file.exists()
    finally:
        process.kill()
        process.wait()
        with __import__("contextlib").suppress(ProcessLookupError):
            os.kill(server, 9)


def test_an_unwritable_state_directory_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a checkout where .batchlens-demo cannot be created (read-only, or a file of that name)
    (tmp_path / ".batchlens-demo").write_text("not a directory")
    monkeypatch.setattr(demo, "_state_file", lambda: tmp_path / ".batchlens-demo" / "state.json")

    # When the demo runs; then it says so in one line
    code, _, err = cli_demo()
    assert code == 1
    assert err.startswith("batchlens: cannot write ")
    assert len(err.splitlines()) == 1
