"""SMTP delivery against a real aiosmtpd server: reuse, reconnect, failure classes."""

from __future__ import annotations

from email.message import EmailMessage, Message
from email.utils import getaddresses

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from connect311_local.broker import free_port
from connect311_notifier.mailer import Mailer, Outcome, classify
from connect311_notifier.mime import compat_message
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.smtp_pipeline import _quoted, addresses, crlf_lines, dot_stuffed
from tests.support.smtp import SmtpSink, start_smtp_sink


def message(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", f"r{i}@example.org", f"m{i}"
    msg.set_content("hello")
    return msg


async def test_one_connection_carries_many_messages(smtp_sink: SmtpSink) -> None:
    mailer = Mailer(NotifierSettings(smtp_port=smtp_sink.port))  # type: ignore[attr-defined]
    results = [await mailer.send(message(i)) for i in range(5)]
    await mailer.close()
    assert [r.outcome for r in results] == [Outcome.SENT] * 5
    assert mailer.connections_opened == 1
    assert len(smtp_sink.messages) == 5


async def test_messages_per_connection_cap_reconnects(smtp_sink: SmtpSink) -> None:
    settings = NotifierSettings(smtp_port=smtp_sink.port, smtp_messages_per_connection=2)  # type: ignore[attr-defined]
    mailer = Mailer(settings)
    for i in range(5):
        assert (await mailer.send(message(i))).outcome is Outcome.SENT
    await mailer.close()
    assert mailer.connections_opened == 3


async def test_server_restart_is_a_temporary_failure_then_reconnects() -> None:
    port = free_port()
    mailer = Mailer(NotifierSettings(smtp_port=port, smtp_connect_timeout_s=2))
    refused = await mailer.send(message(0))
    assert refused.outcome is Outcome.UNREACHABLE and not refused.bounce
    assert await mailer.probe() is not None
    controller, sink = start_smtp_sink(port)
    try:
        assert (await mailer.send(message(1))).outcome is Outcome.SENT
    finally:
        controller.stop()
    dropped = await mailer.send(message(2))  # the server went away under the connection
    assert dropped.outcome is Outcome.TEMPORARY
    controller, sink2 = start_smtp_sink(port)
    try:
        assert (await mailer.send(message(3))).outcome is Outcome.SENT
    finally:
        controller.stop()
        await mailer.close()
    assert [m["Subject"] for m in sink.messages + sink2.messages] == ["m1", "m3"]


@pytest.mark.parametrize(
    ("reply", "outcome", "bounce"),
    [
        ("550 5.1.1 No such user", Outcome.PERMANENT, True),
        ("552 5.3.4 Message too big", Outcome.PERMANENT, True),
        ("451 4.3.0 Try again later", Outcome.TEMPORARY, False),
        ("421 4.7.0 Too many connections", Outcome.TEMPORARY, False),
    ],
)
async def test_smtp_replies_are_classified(
    smtp_sink: SmtpSink, reply: str, outcome: Outcome, bounce: bool
) -> None:
    smtp_sink.fail_with = reply
    mailer = Mailer(NotifierSettings(smtp_port=smtp_sink.port))  # type: ignore[attr-defined]
    result = await mailer.send(message(0))
    await mailer.close()
    assert (result.outcome, result.bounce, result.code) == (outcome, bounce, int(reply[:3]))
    assert reply[4:] in result.reason


def test_our_own_configuration_errors_never_bounce_the_recipient() -> None:
    auth = classify(aiosmtplib.SMTPAuthenticationError(535, "bad credentials"))
    sender = classify(aiosmtplib.SMTPSenderRefused(550, "sender rejected", "a@example.org"))
    assert auth.outcome is sender.outcome is Outcome.TEMPORARY
    assert not auth.bounce and not sender.bounce


def greeting_server(port: int, greeting: str) -> Controller:
    from aiosmtpd.smtp import SMTP

    class Refusing(SMTP):
        async def push(self, status: str) -> None:
            # The first thing a server says is its greeting: replace it with the refusal.
            if status.startswith("220 ") and not getattr(self, "_greeted", False):
                self._greeted = True
                status = greeting
            await super().push(status)

    controller = Controller(SmtpSink(), hostname="127.0.0.1", port=port)
    controller.factory = lambda: Refusing(controller.handler, hostname="127.0.0.1")  # type: ignore[method-assign]
    controller.start()
    return controller


@pytest.mark.parametrize("greeting", ["421 4.3.2 Service shutting down", "554 No SMTP service"])
async def test_a_refused_greeting_is_the_server_unreachable_not_a_bounce(greeting: str) -> None:
    port = free_port()
    controller = greeting_server(port, greeting)
    try:
        mailer = Mailer(NotifierSettings(smtp_port=port, smtp_connect_timeout_s=5))
        result = await mailer.send(message(0))
        probed = await mailer.probe()
        await mailer.close()
    finally:
        controller.stop()
    # Nothing about the message was refused: no bounce, and the sender will not charge it.
    assert (result.outcome, result.code, result.bounce) == (
        Outcome.UNREACHABLE,
        int(greeting[:3]),
        False,
    )
    assert greeting[4:] in result.reason
    assert probed is not None and probed.outcome is Outcome.UNREACHABLE
    assert mailer.connections_opened == 0


async def test_probe_opens_the_session_the_next_send_reuses(smtp_sink: SmtpSink) -> None:
    mailer = Mailer(NotifierSettings(smtp_port=smtp_sink.port))  # type: ignore[attr-defined]
    assert await mailer.probe() is None
    assert (await mailer.send(message(0))).outcome is Outcome.SENT
    await mailer.close()
    assert mailer.connections_opened == 1 and len(smtp_sink.messages) == 1


def compat(i: int) -> Message:
    """What the renderer sends for an ASCII address: a compat32 message (aiosmtplib's
    sendmail path, pipelined when the server offers it)."""
    headers = {"From": "a@example.org", "To": f"r{i}@example.org", "Subject": f"m{i}"}
    return compat_message(headers, ".leading dot\nhello\n", "<p>hello</p>")


@pytest.mark.parametrize("offered", [True, False])
async def test_pipelined_when_the_server_offers_it_else_command_by_command(
    smtp_sink: SmtpSink, offered: bool
) -> None:
    smtp_sink.pipelining = offered
    mailer = Mailer(NotifierSettings(smtp_port=smtp_sink.port))  # type: ignore[attr-defined]
    results = [await mailer.send(compat(i)) for i in range(3)]
    await mailer.close()
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    # The server saw each envelope's RCPT and DATA already waiting behind its MAIL.
    assert smtp_sink.pipelined == mailer.pipelined == (3 if offered else 0)
    assert [m["Subject"] for m in smtp_sink.messages] == ["m0", "m1", "m2"]
    bodies = [m.get_body(("plain",)).get_content() for m in smtp_sink.messages]  # type: ignore[union-attr]
    assert [b.replace("\r\n", "\n") for b in bodies] == [".leading dot\nhello\n"] * 3


@pytest.mark.parametrize(
    ("refuse", "fail_with", "drop_on"),
    [
        ({"MAIL": "550 5.7.1 Sender rejected"}, None, None),
        ({"RCPT": "550 5.1.1 No such user"}, None, None),
        ({"RCPT": "450 4.2.0 Mailbox busy"}, None, None),
        ({}, "554 5.7.1 Message refused", None),
        ({}, "451 4.3.0 Try again later", None),
        ({}, None, "RCPT"),
    ],
)
async def test_each_failure_is_classified_alike_pipelined_or_not(
    refuse: dict[str, str], fail_with: str | None, drop_on: str | None
) -> None:
    seen = {}
    for offered in (True, False):
        port = free_port()
        sink = SmtpSink(pipelining=offered, refuse=dict(refuse), fail_with=fail_with)
        sink.drop_on = drop_on
        controller, _ = start_smtp_sink(port, sink)
        try:
            mailer = Mailer(NotifierSettings(smtp_port=port, smtp_connect_timeout_s=5))
            failed = await mailer.send(compat(0))
            sink.refuse, sink.fail_with = {}, None
            after = await mailer.send(compat(1))  # the session (or a new one) is usable
            await mailer.close()
        finally:
            controller.stop()
        assert after.outcome is Outcome.SENT
        assert [m["Subject"] for m in sink.messages] == ["m1"]
        assert sink.pipelined == (2 if offered else 0)
        seen[offered] = (failed.outcome, failed.code, failed.bounce, failed.reason)
    assert seen[True] == seen[False]
    outcome, code, bounce, _reason = seen[True]
    expected = (refuse.get("MAIL") or refuse.get("RCPT") or fail_with or "")[:3]
    assert code == (int(expected) if expected else None)
    assert bounce is (expected.startswith("5") and "MAIL" not in refuse)
    assert outcome is (Outcome.PERMANENT if bounce else Outcome.TEMPORARY)


@pytest.mark.parametrize(
    "value",
    [
        "a@example.org",
        "First.Last+tag@mail.example.co.uk",
        "x_y-z@sub-domain.example",
        '"St. Pete Public Works" <alerts@example.city>',
        "Connect311 <alerts@example.city>",
        "a..b@example.org",
        ".a@example.org",
        "a@example.org (comment)",
        "a@[127.0.0.1]",
    ],
)
def test_addresses_are_read_as_the_email_package_reads_them(value: str) -> None:
    parsed = [addr for _, addr in getaddresses([value]) if addr]
    assert addresses(value) == parsed
    for address in parsed:
        assert _quoted(address) == quote_address(address)


_WIRE_BYTES = st.lists(
    st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"a", b" ", b"\r\n.", b"\n."])
).map(b"".join)


@given(_WIRE_BYTES)
def test_the_wire_body_is_what_aiosmtplib_writes(message: bytes) -> None:
    # Every CR, LF and CRLF a CRLF, one at the end, a dot doubled at the start of a line
    # (RFC 5321 4.5.2), by plain byte operations instead of aiosmtplib's regexes.
    body = crlf_lines(message)
    assert body == normalize_message_line_endings(message)
    assert dot_stuffed(body) == PERIOD_REGEX.sub(b"..", body)
    assert dot_stuffed(message) == PERIOD_REGEX.sub(b"..", message)


def test_a_generated_message_goes_out_as_aiosmtplib_would_send_it() -> None:
    raw = compat(0).as_bytes()  # the compat32 generator: LF line ends
    body = crlf_lines(raw)
    assert b"\r" not in raw and body == normalize_message_line_endings(raw)
    assert dot_stuffed(body) == PERIOD_REGEX.sub(b"..", body)
    assert b"\r\n..leading dot\r\n" in dot_stuffed(body)
    assert crlf_lines(body) == body  # CRLF already: unchanged
