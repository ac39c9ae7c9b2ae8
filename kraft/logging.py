"""Structured logging for a node: one JSON object per line.

Every record, whether it comes from structlog (`structlog.get_logger(__name__)`) or from a
library that uses the standard `logging` module (aiohttp), goes through one handler on the
root logger and comes out as a JSON object with at least `timestamp` (ISO 8601, UTC),
`level`, `event`, `logger` and `node_id`. Exceptions are rendered into an `exception` key.

`configure_logging` may be called again (tests do, a node does on restart): it replaces the
handler it installed before instead of adding a second one.

The node id is process-wide: it is filled in for every record that does not carry its own.
Tests that run several nodes in one process pass `node_id=None` and bind `node_id` on each
node's logger (`log.bind(node_id=...)`) instead.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# The handler installed by the last call, so that the next call can take it out again.
_installed_handler: logging.Handler | None = None


class _AddNodeId:
    """Fills in `node_id` unless the record already carries one (bound by its logger)."""

    def __init__(self, node_id: int | None) -> None:
        self._node_id = node_id

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("node_id", self._node_id)
        return event_dict


def _shared_processors(node_id: int | None) -> list[Processor]:
    """Steps applied to records of both origins, structlog's and the standard library's."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _AddNodeId(node_id),
    ]


def _json_handler(node_id: int | None, stream: TextIO) -> logging.Handler:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.ExtraAdder(),
            *_shared_processors(node_id),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=_json_fallback),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    return handler


def _json_fallback(value: Any) -> str:
    # Values json cannot encode (enums, exceptions, bytes) are logged by their repr rather
    # than losing the whole record.
    return repr(value)


def configure_logging(
    node_id: int | None, level: str = "info", stream: TextIO = sys.stderr
) -> None:
    """Sends every log record of the process to `stream` as one JSON object per line.

    `level` is one of debug, info, warning, error, critical (any case).
    """
    global _installed_handler
    level_number = LEVELS.get(level.lower())
    if level_number is None:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(node_id),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: loggers created at import time must follow a later reconfiguration.
        cache_logger_on_first_use=False,
    )

    root = logging.getLogger()
    if _installed_handler is not None:
        root.removeHandler(_installed_handler)
        _installed_handler.close()
    _installed_handler = _json_handler(node_id, stream)
    root.addHandler(_installed_handler)
    root.setLevel(level_number)
