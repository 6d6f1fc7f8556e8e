"""Building the email itself: compat32 MIMEMultipart/MIMEText (fast), or EmailMessage when
an address needs SMTPUTF8 (see render.py's docstring for why)."""

from __future__ import annotations

from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from typing import Any

__all__ = ["COMPAT_POLICY", "compat_message", "smtputf8_message"]


class _Compat32(Compat32):
    """compat32, without the Header folding machinery for a plain short header (nearly all).

    A one-line ASCII value with single spaces and room on its line is written as it is,
    which is what the folding algorithm writes for it too, at a fraction of the cost
    (folding was a third of the time to render an alert). Anything else is folded as before.
    """

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        limit = (self.max_line_length or 0) - len(name) - 2
        if (
            isinstance(value, str)
            and value.isascii()
            and len(value) <= limit
            and value == " ".join(value.split())
        ):
            return f"{name}: {value}{self.linesep}"
        return str(super()._fold(name, value, sanitize))  # type: ignore[misc]


COMPAT_POLICY = _Compat32(max_line_length=998)
"""Lines up to SMTP's limit: a long List-Unsubscribe URL stays on its header's line."""
UTF8_AS_IS = Charset("utf-8")
UTF8_AS_IS.body_encoding = None  # type: ignore[assignment]  # UTF-8, sent as is (7bit)
UTF8_QP = Charset("utf-8")
UTF8_QP.body_encoding = QP


def compat_message(headers: dict[str, str], text: str, html: str) -> Message:
    """The fast builder: ASCII headers (others RFC 2047-encoded), UTF-8 parts."""
    message = MIMEMultipart("alternative", policy=COMPAT_POLICY)
    for name, value in headers.items():
        message[name] = value if value.isascii() else _encoded_words(value)
    message.attach(_text_part(text, "plain"))
    message.attach(_text_part(html, "html"))
    return message


def _text_part(body: str, subtype: str) -> MIMEText:
    plain = body.isascii() and all(len(line) <= 998 for line in body.splitlines())
    return MIMEText(body, subtype, UTF8_AS_IS if plain else UTF8_QP, policy=COMPAT_POLICY)  # type: ignore[arg-type]


def _encoded_words(value: str) -> str:
    """RFC 2047 words of at most 75 characters on one line (decoders join them)."""
    return Header(value, "utf-8").encode(linesep="", maxlinelen=75)


def smtputf8_message(headers: dict[str, str], text: str, html: str) -> EmailMessage:
    """The modern builder, for internationalized addresses (sent with SMTPUTF8)."""
    message = EmailMessage()
    for name, value in headers.items():
        message[name] = value
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message
