"""bench/e2e.py --quick (issue 15): the whole stack, short stages, figures printed only.

Asserted: the run completes, every email of every request (each reaching a handful of
residents) and of the fan-out arrived exactly once, and the services were started with the
log level they actually read (not a LOG_LEVEL variable nobody reads), the ingestor's and a
second notifier's included.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.integration.bench.quick import run_quick

ROOT = Path(__file__).resolve().parents[3]


def test_services_get_the_level_option_they_read() -> None:
    sys.path.insert(0, str(ROOT / "bench"))  # the bench's parts import their neighbours
    from e2e_stack import quiet, with_notifiers

    from connect311_local.stack import LocalPorts, service_specs

    url = "postgresql+psycopg://postgres@127.0.0.1:5432/ledger"
    specs = [
        quiet(s) for s in with_notifiers(service_specs(LocalPorts.free(), ROOT / "var"), 2, url)
    ]
    levelled = {s.name for s in specs if s.argv[-2:] == ("--log-level", "warning")}
    assert levelled == {"map-api", "matcher", "notifier", "notifier-2"}
    # The ingestor reads it before its command (one option for all of them).
    [ingestor] = [s for s in specs if s.name == "ingestor"]
    assert ingestor.argv[1:] == ("--log-level", "warning", "run")
    assert all("LOG_LEVEL" not in s.env for s in specs)
    # Two notifiers: one shared ledger, each its own instance id and port.
    notifiers = [s.env for s in specs if s.name.startswith("notifier")]
    assert {e["NOTIFIER_DATABASE_URL"] for e in notifiers} == {url}
    assert len({e["NOTIFIER_INSTANCE_ID"] for e in notifiers}) == 2
    assert len({e["NOTIFIER_HTTP_PORT"] for e in notifiers}) == 2


def test_quick_run_emails_every_recipient_once() -> None:
    out = run_quick("e2e.py", timeout=240)
    rows = [line.split() for line in out.splitlines()]
    row = next(r for r in rows if r[:1] == ["50"] and "/" in r[2])  # the table's, not progress
    emails, expected = row[2].split("/")
    complete, sent = row[3].split("/")
    assert emails == expected and int(expected) > int(sent) > 0, row  # several per request
    assert complete == sent, row
    assert "fan-out    100: 100/100 emailed" in out
    assert "duplicates: 0; untagged: 0;" in out
