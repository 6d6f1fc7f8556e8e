"""The shared logging setup: JSON lines with context, text lines, and email redaction."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connect311_bus.logs import (
    REDACTED,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    current_context,
    header_trace_id,
    kafka_context,
    log_context,
    log_format,
    redact,
)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging replaces root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test.logs.{id(out)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, out


def _json_lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_line_has_the_standard_fields_and_the_context() -> None:
    logger, out = _logger(JsonFormatter("matcher"))
    with log_context(event_id="ev-1", trace_id="tr-1", topic="t", partition=2, offset=41):
        logger.warning("matched %d subscriptions", 3)
    logger.info("outside")
    inside, outside = _json_lines(out)
    assert next(iter(inside)) == "timestamp"
    assert str(inside["timestamp"]).startswith("20") and "+00:00" in str(inside["timestamp"])
    assert inside["level"] == "WARNING"
    assert inside["service"] == "matcher"
    assert inside["logger"] == logger.name
    assert inside["message"] == "matched 3 subscriptions"
    assert (inside["event_id"], inside["trace_id"]) == ("ev-1", "tr-1")
    assert (inside["topic"], inside["partition"], inside["offset"]) == ("t", 2, 41)
    assert "event_id" not in outside and "trace_id" not in outside


def test_context_nests_and_is_restored() -> None:
    with log_context(trace_id="outer", event_id=None):
        assert dict(current_context()) == {"trace_id": "outer"}
        with log_context(event_id="e", trace_id="inner"):
            assert dict(current_context()) == {"trace_id": "inner", "event_id": "e"}
        assert dict(current_context()) == {"trace_id": "outer"}
    assert dict(current_context()) == {}


async def test_context_does_not_leak_between_concurrent_tasks() -> None:
    seen: dict[str, object] = {}

    async def handle(event_id: str) -> None:
        with log_context(event_id=event_id):
            await asyncio.sleep(0.01)  # the other task runs in between
            seen[event_id] = current_context()["event_id"]

    await asyncio.gather(handle("a"), handle("b"))
    assert seen == {"a": "a", "b": "b"}


def test_explicit_extra_wins_over_context() -> None:
    logger, out = _logger(JsonFormatter("notifier"))
    with log_context(event_id="from-context"):
        logger.info("x", extra={"event_id": "explicit", "email_kind": "alert"})
    (line,) = _json_lines(out)
    assert line["event_id"] == "explicit"
    assert line["email_kind"] == "alert"


def test_json_redacts_addresses_in_message_args_extras_and_tracebacks() -> None:
    logger, out = _logger(JsonFormatter("notifier"))
    logger.info("sent to %s", "jane.doe+alerts@example.org", extra={"to": "bob@mail.example"})
    try:
        raise ValueError("recipient carol@example.net refused")
    except ValueError:
        logger.exception("delivery failed")
    text = out.getvalue()
    for address in ("jane.doe+alerts@example.org", "bob@mail.example", "carol@example.net"):
        assert address not in text
    sent, failed = _json_lines(out)
    assert sent["message"] == f"sent to {REDACTED}"
    assert sent["to"] == REDACTED
    assert "ValueError: recipient " + REDACTED in str(failed["exception"])


def test_text_lines_carry_service_context_and_redaction() -> None:
    logger, out = _logger(TextFormatter("ingestor"))
    with log_context(event_id="e9", trace_id="t9"):
        logger.info("published for %s", "x@example.com")
    line = out.getvalue().strip()
    assert " INFO ingestor " in line
    assert line.endswith(f"published for {REDACTED} [event_id=e9 trace_id=t9]")


def test_url_encoded_address_is_redacted_and_the_rest_of_the_line_survives() -> None:
    line = redact("GET /api/subscriptions?email=jane%40example.com HTTP/1.1 200")
    # "?", "=" and "&" may be part of an address, so the query before it goes too.
    assert line == f"GET /api/{REDACTED} HTTP/1.1 200"


def test_text_without_addresses_is_unchanged() -> None:
    for text in ("no at sign here", "trace 5f0c@ but no domain", "version 1.2 @ 3"):
        assert redact(text) == text


# Local parts without "/" (the pattern stops there so URL paths before an address survive).
emails = st.emails().filter(lambda e: "/" not in e.rsplit("@", 1)[0])


@given(prefix=st.text(max_size=30), address=emails, suffix=st.text(max_size=30))
def test_any_address_inside_any_text_is_redacted(prefix: str, address: str, suffix: str) -> None:
    assert address not in redact(f"{prefix} {address} {suffix}")
    assert address not in redact(f"{prefix}<{address}>{suffix}")


@given(address=emails)
def test_any_address_is_redacted_from_a_json_line(address: str) -> None:
    logger, out = _logger(JsonFormatter("map-api"))
    logger.info("sign-up from %s", address)
    assert address not in out.getvalue()
    assert json.loads(out.getvalue())["message"].startswith("sign-up from ")


def test_log_format_reads_the_environment() -> None:
    assert log_format({}) == "text"
    assert log_format({"LOG_FORMAT": " JSON "}) == "json"
    assert log_format({"LOG_FORMAT": "text"}) == "text"
    with pytest.raises(ValueError, match="json or text"):
        log_format({"LOG_FORMAT": "xml"})


def test_configure_logging_json_routes_every_logger(
    root_logging: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    configure_logging("matcher", "info")
    logging.getLogger("aiokafka.consumer").warning("rebalance")
    logging.getLogger("connect311_matcher").debug("hidden at INFO")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(entry["logger"], entry["message"]) for entry in lines] == [
        ("aiokafka.consumer", "rebalance")
    ]
    assert lines[0]["service"] == "matcher"


def test_configure_logging_falls_back_to_text_on_a_bad_format(
    root_logging: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "yaml")
    configure_logging("notifier", "INFO")
    logging.getLogger("x").info("still logging")
    err = capsys.readouterr().err
    assert "LOG_FORMAT must be json or text, not 'yaml'; logging as text" in err
    assert " INFO notifier x still logging" in err


@dataclass
class _Record:
    topic: str = "requests.events.v1"
    partition: int = 3
    offset: int = 17
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def test_kafka_context_takes_position_and_trace_header() -> None:
    record = _Record(headers=[("other", b"x"), ("trace_id", b"abc123")])
    assert kafka_context(record) == {
        "topic": "requests.events.v1",
        "partition": 3,
        "offset": 17,
        "trace_id": "abc123",
    }
    assert "trace_id" not in kafka_context(_Record())
    assert header_trace_id(None) is None
    assert header_trace_id([("trace_id", b"")]) is None
