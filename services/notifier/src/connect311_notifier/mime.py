"""Building the email itself: compat32 MIMEMultipart/MIMEText (fast), or EmailMessage when
an address needs SMTPUTF8 (see render.py's docstring for why)."""

from __future__ import annotations

import random
import re
import sys
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32, Policy
from typing import Any

__all__ = ["COMPAT_POLICY", "Alternative", "compat_message", "smtputf8_message"]


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
_LINE_END = re.compile(r"\r\n|\r|\n")
"""The line breaks the generator splits text on (email.generator.NLCRE)."""


class Alternative(MIMEMultipart):
    """multipart/alternative of text parts whose as_bytes writes what the email package's
    generator writes for it, without the generator (a quarter of an alert's cost, once
    rendering was shared): each header folded by the policy, each part's lines with the
    policy's line ends, the parts between the boundary set when the message was built.
    Anything else (a Unix From line, another policy, a preamble, a part that is not plain
    ASCII text) goes through the generator (tests/unit/notifier/test_alert_skeleton.py)."""

    def __init__(self, boundary: str) -> None:
        # The state MIMEMultipart("alternative", boundary) builds, set directly: it parses
        # and rewrites its Content-Type to add the boundary (a third of building an alert's
        # MIME tree). `boundary` is _boundary's: '=' and digits, nothing to escape.
        Message.__init__(self, COMPAT_POLICY)
        content_type = f'multipart/alternative; boundary="{boundary}"'
        self._headers = [("Content-Type", content_type), ("MIME-Version", "1.0")]
        self._payload: list[Message] = []
        self.wire_boundary = boundary
        self.wire_type = content_type  # changed after (a boundary set): the generator

    def as_bytes(self, unixfrom: bool = False, policy: Policy | None = None) -> bytes:
        parts: list[Any] = self._payload  # MIMEText parts (their _payload is read below)
        plain = (
            not unixfrom
            and policy is None
            and self.preamble is None
            and self.epilogue is None
            and self.policy is COMPAT_POLICY
            and self["Content-Type"] == self.wire_type
            and all(isinstance(p, MIMEText) and _ascii_text(p) for p in parts)
        )
        if not plain:
            return super().as_bytes(unixfrom, policy)
        nl = self.policy.linesep
        delimiter = f"{nl}--{self.wire_boundary}{nl}".encode("ascii")
        body = delimiter.join(_head(p) + _lines(p._payload, nl) for p in parts)
        close = f"{nl}--{self.wire_boundary}--{nl}".encode("ascii")
        return _head(self) + delimiter[len(nl) :] + body + close


def _ascii_text(part: MIMEText) -> bool:
    payload = part._payload  # type: ignore[attr-defined]
    return isinstance(payload, str) and payload.isascii()


def _head(message: Message) -> bytes:
    """The header block as the generator writes it: each folded by the policy, a blank line."""
    fold = message.policy.fold_binary
    blank = message.policy.linesep.encode("ascii")
    return b"".join(fold(name, value) for name, value in message.raw_items()) + blank


def _lines(payload: str, nl: str) -> bytes:
    """A text payload with the policy's line ends, as the generator's _write_lines writes."""
    if nl == "\n" and "\r" not in payload:
        return payload.encode("ascii")  # already so
    return _LINE_END.sub(nl, payload).encode("ascii")


def compat_message(headers: dict[str, str], text: str, html: str) -> Message:
    """The fast builder: ASCII headers (others RFC 2047-encoded), UTF-8 parts."""
    message = Alternative(_boundary(text, html))
    for name, value in headers.items():
        message[name] = value if value.isascii() else _encoded_words(value)
    message.attach(_text_part(text, "plain"))
    message.attach(_text_part(html, "html"))
    return message


def _boundary(*texts: str) -> str:
    """The boundary the email package would draw (same format, same random draw), checked
    with a substring test instead of the regex it compiles anew for every message (a tenth
    of an alert's cost). Stricter than its check; a part cannot forge it: the 15 '=' in a
    row never survive quoted-printable, and an as-is part is the text itself."""
    token = random.randrange(sys.maxsize)
    boundary = found = ("=" * 15) + f"{token:019d}" + "=="
    counter = 0
    while any(found in text for text in texts):
        found = f"{boundary}.{counter}"
        counter += 1
    return found


def _text_part(body: str, subtype: str) -> MIMEText:
    plain = body.isascii() and max(map(len, body.splitlines()), default=0) <= 998
    if plain and subtype in _AS_IS:
        return _as_is_part(body, subtype)
    return MIMEText(body, subtype, UTF8_AS_IS if plain else UTF8_QP, policy=COMPAT_POLICY)  # type: ignore[arg-type]


_AS_IS = {
    subtype: MIMEText("", subtype, UTF8_AS_IS, policy=COMPAT_POLICY)  # type: ignore[arg-type]
    for subtype in ("plain", "html")
}
"""An ASCII part of each subtype as MIMEText builds it: its headers are the same for every body."""


def _as_is_part(body: str, subtype: str) -> MIMEText:
    """What `MIMEText(body, subtype, UTF8_AS_IS)` builds for an ASCII body with short lines,
    without building it: MIMEText sets the charset, which encodes and decodes the whole body
    to choose 7bit, then adds the same three headers each time (most of an alert's MIME
    cost once rendering was shared). The same object state: test_alert_skeleton.py."""
    template = _AS_IS[subtype]
    part = MIMEText.__new__(MIMEText)
    part.__dict__.update(template.__dict__)
    part._headers = list(template._headers)  # type: ignore[attr-defined]
    part.defects = []
    part._payload = body  # type: ignore[attr-defined]
    return part


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
