"""One logging setup for every service: JSON lines or text, carrying event and trace ids.

`LOG_FORMAT=json` (containers, log shippers) or `text` (the default: local consoles).
Fields set with `log_context(...)` (event_id, trace_id, topic, partition, offset) ride on
every line logged inside it, in the same task. Anything that looks like an email address is
redacted from every line, tracebacks included: subscriber addresses must never reach a log,
whatever a caller formats into a message. Redaction is linear in the line's length (no
pattern can backtrack), and a message longer than `MAX_MESSAGE_CHARS` is cut, saying so, before
any pattern runs: one hostile URL in an access line must not stall the event loop.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Protocol

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

__all__ = [
    "CONTEXT_FIELDS",
    "MAX_MESSAGE_CHARS",
    "REDACTED",
    "TRACE_HEADER",
    "ContextValue",
    "JsonFormatter",
    "KafkaRecord",
    "StderrHandler",
    "TextFormatter",
    "cap",
    "configure_logging",
    "current_context",
    "header_trace_id",
    "kafka_context",
    "log_context",
    "log_format",
    "redact",
]

ContextValue = str | int
CONTEXT_FIELDS = ("event_id", "trace_id", "topic", "partition", "offset")
TRACE_HEADER = "trace_id"  # same as connect311_bus.kafka.TRACE_HEADER (no aiokafka import)
REDACTED = "<email redacted>"
MAX_MESSAGE_CHARS = 16_384  # longer messages are cut (saying so) before redaction runs

# What looks like an address: an unquoted RFC 5322 local part (without "/", so a URL path
# before it survives), "@" or its URL encoding, a dotted domain. Over-redacting a query string
# is the price of never leaking. Matched from each "@"/"%40" outwards instead of by one pattern:
# a pattern starting with the local part retries at every character of a long run (the old one
# took 3.3 s on 30,000 characters). The domain pattern is possessive, so it cannot backtrack.
_LOCAL_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+=?^_`{|}~.-"
)
_ANCHOR = re.compile(r"@|%40")
_DOMAIN = re.compile(r"[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)+")
_EMPTY: Mapping[str, ContextValue] = MappingProxyType({})
_context: ContextVar[Mapping[str, ContextValue]] = ContextVar("connect311_log", default=_EMPTY)


def redact(text: str) -> str:
    """The text with anything that looks like an email address replaced (linear time)."""
    if "@" not in text and "%40" not in text:
        return text  # the common case, without running a pattern
    pieces: list[str] = []
    done = 0  # text[:done] is copied or redacted: no later scan looks before it
    for anchor in _ANCHOR.finditer(text):
        at, after = anchor.span()
        domain = _DOMAIN.match(text, after) if at >= done else None
        if domain is None:
            continue
        start = at
        while start > done and text[start - 1] in _LOCAL_CHARS:
            start -= 1  # each character is walked at most once: later walks stop at `done`
        if start == at:
            if not pieces or at != done:
                continue  # "@host.name" with no local part: a decorator, a handle, not an address
            # "a%40b.c@d.e": the previous address goes on; its marker already covers it
        else:
            pieces += (text[done:start], REDACTED)
        done = domain.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def cap(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The text cut to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters cut]"


def _capped(record: logging.LogRecord) -> logging.LogRecord:
    """The record, or a copy with its message cut (other handlers keep the original)."""
    message = record.getMessage()
    if len(message) <= MAX_MESSAGE_CHARS:
        return record
    short = copy.copy(record)
    short.msg, short.args = cap(message), None
    return short


@contextmanager
def log_context(**fields: ContextValue | None) -> Iterator[None]:
    """Add fields (None ones skipped) to every log line inside the block."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, ContextValue]:
    """The fields `log_context` has set here."""
    return _context.get()


class KafkaRecord(Protocol):
    """What `kafka_context` needs of a consumed record (aiokafka's ConsumerRecord has it)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


def header_trace_id(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    """The trace id a Kafka record carries in its `trace_id` header, if any."""
    for name, value in headers or ():
        if name == TRACE_HEADER and value:
            return value.decode(errors="replace")
    return None


def kafka_context(record: KafkaRecord) -> dict[str, ContextValue]:
    """Log fields for one consumed record: where it sits, and its trace id header."""
    fields: dict[str, ContextValue] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }
    trace_id = header_trace_id(record.headers)
    if trace_id:
        fields["trace_id"] = trace_id
    return fields


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object a line: timestamp, level, service, logger, message, context, extras."""

    def __init__(self, service: str) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            static_fields={"service": service},
            timestamp=True,
            # uvicorn adds a copy of each message with terminal colour codes: noise in JSON.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """The library's fields, then the context's (explicit `extra=` values win)."""
        super().add_fields(log_data, record, message_dict)
        for key, value in _context.get().items():
            log_data.setdefault(key, value)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Timestamp first, so lines read and sort well."""
        return {"timestamp": log_data.pop("timestamp", None), **log_data}

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line, a long message cut, addresses redacted."""
        return redact(super().format(_capped(record)))


class TextFormatter(logging.Formatter):
    """`time level logger message [key=value ...]`, addresses redacted."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s {service} %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line with the context appended, a long message cut."""
        line = super().format(_capped(record))
        context = _context.get()
        if context:
            line += " [" + " ".join(f"{k}={v}" for k, v in context.items()) + "]"
        return redact(line)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is logged.

    A rich progress display swaps sys.stderr for a proxy that prints lines above the bar;
    a handler holding the original stream would scribble over the bar instead.
    """

    @property
    def stream(self) -> Any:
        """The current sys.stderr."""
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass  # StreamHandler.__init__ sets it; there is nothing to keep


def log_format(environ: Mapping[str, str] = os.environ) -> str:
    """`json` or `text`, from LOG_FORMAT (any case; unset means text)."""
    value = environ.get("LOG_FORMAT", "text").strip().lower() or "text"
    if value not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be json or text, not {value!r}")
    return value


def configure_logging(service: str, level: str = "INFO", fmt: str | None = None) -> None:
    """Send every logger's records to stderr as JSON lines or text (LOG_FORMAT when fmt=None).

    Replaces handlers set before; libraries' loggers (uvicorn with log_config=None, aiokafka)
    propagate to this one handler, so they are formatted and redacted alike.
    """
    problem = None
    try:
        chosen = fmt or log_format()
    except ValueError as exc:  # logging must never be the reason a service does not start
        chosen, problem = "text", str(exc)
    handler = StderrHandler()
    formatter = JsonFormatter(service) if chosen == "json" else TextFormatter(service)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    if problem:
        logging.getLogger(__name__).warning("%s; logging as text", problem)
