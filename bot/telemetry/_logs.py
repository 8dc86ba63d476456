"""Structured logs (private): structlog over the standard library's logging.

Every log line of the process, ours and our libraries', goes through one formatter: JSON lines
when the stream is not a terminal (one object a line: ``timestamp``, ``level``, ``logger``,
``event`` and the ids), a readable colourless line on a terminal. The ids of the work in hand
(``run_id``, ``node_id``, ``checkpoint_id``) come from the engine's context
(``engine.observers.current_ids``) and from structlog's context variables.

No secret reaches the output: values of keys that name secrets (``token``, ``secret``,
``password``, ``authorization``, ``cookie``, ``api_key``) are replaced, the process's own
secrets (Slack tokens and signing secret, the Anthropic key, the console and metrics keys) are
masked wherever they appear, and so are strings shaped like Slack or Anthropic tokens.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from engine.observers import current_ids

__all__ = ["LOGGER_NAME", "Redactor", "configure_logging", "log_handler"]

LOGGER_NAME = "signoff"
REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"token|secret|password|passwd|authorization|cookie|api_?key|signature", re.I)
# Slack tokens (bot, user, app, config), Anthropic keys, and bearer credentials in a header echo
_SECRET_SHAPES = re.compile(
    r"xox[abposer]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|sk-ant-[A-Za-z0-9_-]{6,}"
    r"|(?<=Bearer )[A-Za-z0-9._~+/=-]{8,}"
)
_SAFE_KEYS = frozenset({"event", "logger", "level", "timestamp", "run_id", "node_id", "checkpoint_id"})


class Redactor:
    """A structlog processor that masks secrets in keys, known values and token shapes."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so a secret that contains another is masked whole
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        """``text`` with every known secret and token-shaped string replaced."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _SECRET_SHAPES.sub(REDACTED, text)

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        """Mask the event dictionary in place."""
        for key, value in list(event_dict.items()):
            # a number is a count (``input_tokens``), never a credential
            if (
                key not in _SAFE_KEYS
                and _SECRET_KEY.search(key)
                and isinstance(value, str | bytes | dict | list)
            ):
                event_dict[key] = REDACTED
            else:
                event_dict[key] = self._value(value)
        return event_dict

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.mask(str(value))


def _engine_ids(logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
    """The run, node and checkpoint ids the engine bound (an explicit value wins)."""
    for key, value in current_ids().items():
        event_dict.setdefault(key, value)
    return event_dict


def _no_message_copy(logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
    """Drop the record's ``message`` (a copy of ``event`` that ``ExtraAdder`` takes for an extra)."""
    event_dict.pop("message", None)
    return event_dict


def _pre_chain() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _engine_ids,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        _no_message_copy,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def log_handler(log_format: str, stream: TextIO, secrets: Iterable[str] = ()) -> logging.Handler:
    """A handler that writes every record to ``stream`` as JSON (``json``), a readable line
    (``console``), or whichever fits the stream (``auto``: console on a terminal)."""
    pretty = log_format == "console" or (log_format == "auto" and stream.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False) if pretty else structlog.processors.JSONRenderer()
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_pre_chain(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                Redactor(secrets),
                renderer,
            ],
        )
    )
    return handler


def configure_logging(
    log_format: str = "auto",
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
    level: int = logging.INFO,
) -> logging.Handler:
    """Send every log record of the process through one structured handler on ``stream``
    (stderr by default), replacing the root logger's handlers; returns the handler."""
    structlog.configure(
        processors=[*_pre_chain(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = log_handler(log_format, stream or sys.stderr, secrets)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
