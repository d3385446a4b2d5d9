"""moto's server on loopback, in a thread, with AWS's per-request atomicity restored.

moto's backends take no locks: two concurrent conditional writes of one item may both pass their
condition, which DynamoDB never allows. Serving one request at a time (while clients still connect,
retry and time out concurrently over real HTTP) gives every request the atomicity the real service
guarantees, so a race that the soak or a concurrency test finds is batchlens's, not moto's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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


class LockedMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer on 127.0.0.1 and a free port, serving one request at a time."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)

    def _server_entry(self) -> None:
        app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint_url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


@contextmanager
def locked_moto_server() -> Iterator[str]:
    """Run a LockedMotoServer; yields its endpoint URL."""
    server = LockedMotoServer()
    server.start()
    try:
        yield server.endpoint_url
    finally:
        server.stop()
