"""The local run's summary counts error lines as the services really write them."""

from __future__ import annotations

import logging

import pytest

from connect311_bus.logs import JsonFormatter, TextFormatter
from connect311_local.supervisor import is_error_line


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("connect311_notifier.app", level, __file__, 1, message, None, None)


@pytest.mark.parametrize("formatter", [TextFormatter("notifier"), JsonFormatter("notifier")])
def test_error_and_critical_lines_count_and_others_do_not(formatter: logging.Formatter) -> None:
    assert is_error_line(formatter.format(_record(logging.ERROR, "SMTP refused")))
    assert is_error_line(formatter.format(_record(logging.CRITICAL, "ledger lost")))
    assert not is_error_line(formatter.format(_record(logging.WARNING, "ERROR rate high")))
    assert not is_error_line(formatter.format(_record(logging.INFO, "sent 3 emails")))


def test_an_uncaught_traceback_counts_once() -> None:
    lines = ["Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: x"]
    assert [is_error_line(line) for line in lines] == [True, False, False]


def test_uvicorns_own_error_lines_count() -> None:
    assert is_error_line("ERROR:    Exception in ASGI application")
    assert not is_error_line("INFO:     127.0.0.1:5000 - GET /healthz 200")
