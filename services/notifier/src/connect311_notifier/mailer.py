"""SMTP delivery with aiosmtplib: one reused connection, failures sorted temporary/permanent."""

from __future__ import annotations

import logging
import time
from email.message import EmailMessage, Message

import aiosmtplib

from connect311_notifier.outcome import Outcome, SendResult
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.smtp_pipeline import addresses, greet, send_pipelined

# Outcome and SendResult live in the pure outcome policy; exported here too, as what send returns.
__all__ = ["IDLE_CHECK_S", "Mailer", "Outcome", "SendResult", "classify", "unreachable"]

log = logging.getLogger(__name__)

IDLE_CHECK_S = 30.0
"""After this long idle, NOOP first: servers drop idle connections without telling."""


def classify(exc: Exception) -> SendResult:
    """Sort an SMTP failure: 5xx about the recipient or message is permanent (a bounce)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        return classify(exc.recipients[0])
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPSenderRefused):
        # Our own configuration, not the recipient: retry (and alert), never bounce them.
        return SendResult(Outcome.TEMPORARY, exc.code, f"{exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reason = f"{exc.code} {exc.message}"
        if 500 <= exc.code < 600:
            return SendResult(Outcome.PERMANENT, exc.code, reason, bounce=True)
        return SendResult(Outcome.TEMPORARY, exc.code, reason)
    return SendResult(Outcome.TEMPORARY, None, f"{type(exc).__name__}: {exc}")


def unreachable(exc: Exception) -> SendResult:
    """A session could not be opened (refused, timed out, 421 greeting, EHLO/TLS/AUTH refused)."""
    code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None
    detail = f"{code} {exc.message}" if isinstance(exc, aiosmtplib.SMTPResponseException) else exc
    return SendResult(Outcome.UNREACHABLE, code, f"{type(exc).__name__}: {detail}")


class Mailer:
    """Sends messages over one SMTP connection, reconnecting when it was dropped."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self._sent_on_connection = 0
        self.connections_opened = 0
        self.pipelined = 0
        """Messages sent with PIPELINING (the rest went command by command)."""

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_implicit_tls,
            start_tls=False if s.smtp_implicit_tls else s.smtp_starttls,
            validate_certs=s.smtp_validate_certs,
            timeout=s.smtp_connect_timeout_s,
        )

    async def _connection(self) -> aiosmtplib.SMTP:
        smtp = self._smtp
        if smtp is not None and smtp.is_connected:
            if time.monotonic() - self._last_used < IDLE_CHECK_S:
                return smtp
            try:
                await smtp.noop()
                return smtp
            except (aiosmtplib.SMTPException, OSError):
                await self.close()
        smtp = self._client()
        await smtp.connect()
        # EHLO now, not on the first MAIL: its extensions decide how messages are sent, and a
        # refused EHLO is the session failing to open (unreachable), not about an email.
        try:
            await greet(smtp)
        except BaseException:
            smtp.close()
            raise
        self.connections_opened += 1
        self._sent_on_connection = 0
        self._last_used = time.monotonic()  # just greeted: no NOOP needed before the first send
        self._smtp = smtp
        return smtp

    async def _session(self) -> aiosmtplib.SMTP | SendResult:
        try:
            return await self._connection()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            return unreachable(exc)

    async def probe(self) -> SendResult | None:
        """Open (or check) the session, sending nothing: None when the server answers."""
        session = await self._session()
        return session if isinstance(session, SendResult) else None

    async def send(self, message: Message) -> SendResult:
        """One delivery attempt; never raises for SMTP or network failures.

        Failing to open a session is UNREACHABLE (nothing about this message was refused);
        a failure once the session is open is about the message and sorted by `classify`.
        """
        session = await self._session()
        if isinstance(session, SendResult):
            return session
        try:
            await self._transmit(session, message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            result = classify(exc)
            if result.code is None:
                await self.close()  # the connection is in an unknown state: start afresh
            return result
        self._last_used = time.monotonic()
        self._sent_on_connection += 1
        limit = self.settings.smtp_messages_per_connection
        if limit and self._sent_on_connection >= limit:
            await self.close()  # some relays cap messages per connection
        return SendResult(Outcome.SENT)

    async def _transmit(self, smtp: aiosmtplib.SMTP, message: Message) -> None:
        timeout = self.settings.smtp_timeout_s
        if isinstance(message, EmailMessage):  # SMTPUTF8 and 8BITMIME handled by aiosmtplib
            await smtp.send_message(message, timeout=timeout)
            return
        # A compat32 message (ASCII addresses, base64 bodies) goes as it serializes itself,
        # with its own line-length policy; aiosmtplib would re-fold headers at 78 columns.
        sender = addresses(str(message["From"]))[0]
        recipients = addresses(str(message["To"]))
        if smtp.supports_extension("pipelining"):  # RFC 2920: two round trips, not four
            await send_pipelined(smtp, sender, recipients, message.as_bytes(), timeout)
            self.pipelined += 1
            return
        await smtp.sendmail(sender, recipients, message.as_bytes(), timeout=timeout)

    async def close(self) -> None:
        """Say QUIT when possible; drop the connection either way."""
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()
