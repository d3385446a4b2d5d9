"""The real enricher handler (functions/enrich/app.py), loaded as a fresh module: one load is one
Lambda execution environment (its own `_enricher`, clients and thread pool), and what its
Powertools Logger writes can be captured.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TextIO

from tests.conftest import REPO_ROOT

HANDLER_PATH = REPO_ROOT / "functions" / "enrich" / "app.py"
_loads = itertools.count()


def load_handler() -> ModuleType:
    """functions/enrich/app.py as a new module, with no Enricher built yet (a cold start)."""
    name = f"enrich_app_{next(_loads)}"
    spec = importlib.util.spec_from_file_location(name, HANDLER_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__dict__["_enricher"] = None
    # A new execution environment's Logger takes its level from the environment. Powertools
    # configures the "batchlens" logger only once per process, so a load after one made under
    # another level (the in-process demo's WARNING) would keep that level: set it here.
    module.logger.setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL") or "INFO")
    return module


def powertools_handler(app: ModuleType) -> logging.StreamHandler[TextIO]:
    """The stream handler the handler's Powertools Logger writes its JSON lines to."""
    handler = app.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    return handler


@contextmanager
def captured_logs(app: ModuleType) -> Iterator[io.StringIO]:
    """Everything the handler's Powertools Logger writes, while the block runs."""
    buffer = io.StringIO()
    handler = powertools_handler(app)
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        if previous is not None:
            handler.setStream(previous)
