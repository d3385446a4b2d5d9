"""Fixtures the handler's integration tests share."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from batchlens.local import LocalStack
from tests.handler_app import load_handler


@pytest.fixture
def app(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """functions/enrich/app.py, freshly loaded, configured from the stack's environment (a module
    that needs other settings defines its own)."""
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    module = load_handler()
    module.metrics.clear_metrics()  # shared by every Metrics instance: none left from before
    yield module
    module.metrics.clear_metrics()
    module.__dict__["_enricher"] = None
