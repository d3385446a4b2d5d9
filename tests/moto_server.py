"""moto's server on loopback, in a thread, with AWS's per-request atomicity restored.

moto's backends take no locks: two concurrent conditional writes of one item may both pass their
condition, which DynamoDB never allows. Serving one request at a time (while clients still connect,
retry and time out concurrently over real HTTP) gives every request the atomicity the real service
guarantees, so a race that the soak or a concurrency test finds is batchlens's, not moto's.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _OneRequestAtATime:
    """A WSGI app that runs each request (body included) under one lock."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class _QuietRequestHandler(MotoRequestHandler):
    """No access log line per request (the soak makes tens of thousands)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class LockedMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer on 127.0.0.1 and a free port, serving one request at a time."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)

    def _server_entry(self) -> None:
        app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=_QuietRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint_url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


@contextmanager
def locked_moto_server(*, own_process: bool = False) -> Iterator[str]:
    """Run a LockedMotoServer; yields its endpoint URL.

    `own_process` runs it in a child process (`python -m tests.moto_server`), so that moto and the
    code under test do not share one interpreter lock: the soak runs about twice as fast.
    """
    if not own_process:
        server = LockedMotoServer()
        server.start()
        try:
            yield server.endpoint_url
        finally:
            server.stop()
        return
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.moto_server"],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        endpoint_url = child.stdout.readline().strip()
        if not endpoint_url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"moto's server did not start (said {endpoint_url!r})")
        yield endpoint_url
    finally:
        child.terminate()
        child.wait(timeout=30)


@contextmanager
def cli_endpoint() -> Iterator[str]:
    """moto's server on a free loopback port, as the CLI tests see AWS: fake credentials, and
    no profile, endpoint or table variable leaking in from the developer's shell."""
    import logging

    import pytest

    from batchlens import access

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        for name in (access.TABLE_VARIABLE, access.ENDPOINT_VARIABLE):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with locked_moto_server() as endpoint_url:
            yield endpoint_url


def hook_cli_sessions(monkeypatch: Any, event_name: str, handler: Callable[..., Any]) -> None:
    """Register `handler` for botocore's `event_name` on every session the CLI builds."""
    from batchlens import access

    real = access.boto3_session

    def hooked(profile: str | None, region: str | None) -> Any:
        made = real(profile, region)
        made.events.register(event_name, handler)
        return made

    monkeypatch.setattr(access, "boto3_session", hooked)


def main() -> None:
    """Serve until terminated; the first line on standard output is the endpoint URL."""
    server = LockedMotoServer()
    server.start()
    print(server.endpoint_url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
