"""bench/abuse.py (issue 12): its attacks are what they claim, and a quick run completes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "bench" / "abuse.py"
MAX_BODY_BYTES = 64_000  # the map API's default MAP_API_MAX_BODY_BYTES


@pytest.fixture(scope="module")
def abuse() -> ModuleType:
    sys.path.insert(0, str(BENCH.parent))  # the bench imports its neighbour machine_info
    spec = importlib.util.spec_from_file_location("abuse_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def attacks(abuse: ModuleType) -> ModuleType:
    """bench/abuse_attacks.py, the attacks the bench imports (now importable: see `abuse`)."""
    return importlib.import_module("abuse_attacks")


def test_help_lists_every_attack(abuse: ModuleType) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for name in abuse.ATTACKS:
        assert name in done.stdout
    assert "--src" in done.stdout and "--quick" in done.stdout


def test_bad_bodies_fit_under_the_body_limit_and_are_hostile(attacks: ModuleType) -> None:
    # Over the body limit, the server would answer 413 and the bench would measure nothing.
    bodies = {kind: body for kind, _path, body in attacks.bad_bodies()}
    assert all(len(body) < MAX_BODY_BYTES for body in bodies.values())
    for kind in ("NaN radius", "Infinity lat", "-Infinity width", "NaN preview"):
        text = json.dumps(json.loads(bodies[kind]))  # Python's json reads NaN/Infinity
        assert "NaN" in text or "Infinity" in text, kind
    for kind in ("deep array", "deep object"):
        with pytest.raises(RecursionError):  # deeper than any default recursion limit
            json.loads(bodies[kind])


def test_signup_flood_is_one_mailbox_in_many_spellings(attacks: ModuleType) -> None:
    emails = attacks.mailbox_variants(attacks.SIGNUP_VARIANTS)
    assert len(set(emails)) == len(emails) == attacks.SIGNUP_VARIANTS
    # Gmail ignores case, dots in the local part and everything after "+".
    mailboxes = {e.split("@")[0].split("+")[0].replace(".", "").lower() for e in emails}
    assert mailboxes == {"victim"}
    assert {e.split("@")[1] for e in emails} == {"gmail.com"}


def test_raw_request_declares_its_body_length(attacks: ModuleType) -> None:
    raw = attacks.request_bytes("POST", "/api/subscriptions", body=b'{"a": 1}')
    head, body = raw.split(b"\r\n\r\n", 1)
    assert body == b'{"a": 1}'
    assert b"Content-Length: 8" in head.split(b"\r\n")
    assert raw.startswith(b"POST /api/subscriptions HTTP/1.1\r\n")


def test_quick_run_of_one_attack_prints_the_table_and_a_verdict() -> None:
    command = [
        sys.executable, str(BENCH), "--quick", "--no-broker", "--duration", "1.5",
        "--seeded", "200", "--attacks", "bad-numbers",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines if line.split()}
    assert "baseline" in rows and "bad-numbers" in rows
    # The server answered every kind of hostile body (whatever the status, it was counted).
    for kind in ("NaN radius:", "deep array:", "deep object:"):
        assert kind in rows["bad-numbers"]
    assert any(line.startswith("verdict: ") for line in lines)
    assert any(line.startswith("5xx answers to the attacks: ") for line in lines)


@pytest.mark.parametrize(
    ("answer", "server_error"),
    [
        ("500", True),
        ("NaN radius: 503", True),
        ("500 after 3 s", True),
        ("408 after 10 s", False),
        ("200, held to phase end", False),
        ("held open 15 s, to phase end", False),
        ("deep array: 400", False),
        ("5000 features", False),
    ],
)
def test_server_errors_are_told_from_other_answers(
    abuse: ModuleType, answer: str, server_error: bool
) -> None:
    assert abuse.is_5xx(answer) is server_error
