"""Keep confirm, manage and unsubscribe tokens out of logs (access lines included).

A token in a URL is a bearer credential: whoever reads the access log could unsubscribe or
manage someone's alerts. Access lines keep the route (`/api/subscriptions/confirm?token=
<redacted>`) so operators still see what was asked. The shared log setup already redacts
email addresses; this adds tokens, on the loggers that carry request URLs, before any
handler (uvicorn's own or the service's) formats the line.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from connect311_bus.logs import cap

REDACTED = "<redacted>"
PACKAGE = "connect311_map_api"
UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")

# A query parameter whose name mentions "token", up to the next separator.
_TOKEN_PARAM = re.compile(r"((?:^|(?<=[?&;\s\"']))[\w.-]*token=)[^&;\s\"'#]+", re.IGNORECASE)
# Anything shaped like a signed link token (itsdangerous: payload.timestamp.signature),
# wherever it appears (a path segment, a message): the signature alone is 27+ characters.
# Linear: the look-behind lets a match start only where a run of token characters starts, and
# the possessive runs never give characters back (the old pattern retried every start inside a
# run: 2.6 s on 60,000 characters).
_SIGNED = re.compile(
    r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{2,}+\.[A-Za-z0-9_-]{4,10}+\.[A-Za-z0-9_-]{27,}+"
)


def redact_tokens(text: str) -> str:
    """The text with link tokens replaced by `<redacted>`."""
    if "=" in text:  # a cheap pre-check: no "token=" parameter without an "="
        text = _TOKEN_PARAM.sub(rf"\1{REDACTED}", text)
    if "." in text:
        text = _SIGNED.sub(REDACTED, text)
    return text


def _clean(value: Any) -> Any:
    # Cut before any pattern runs: a 60 KB URL is an attack, not something to log whole.
    return redact_tokens(cap(value)) if isinstance(value, str) else value


class TokenRedactingFilter(logging.Filter):
    """Rewrites a record's message and string arguments with tokens redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        if not record.args:
            record.msg = _clean(record.msg)
            return True
        # Arguments first, keeping them: uvicorn's access formatter reads them one by one.
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _clean(value) for key, value in record.args.items()}
        try:
            rendered = record.getMessage()
        except (TypeError, ValueError):
            return True  # logging reports the bad format itself
        clean = redact_tokens(cap(rendered))
        if clean != rendered:  # e.g. "?token=%s" with an argument no pattern knew alone
            record.msg, record.args = clean, ()
        return True


def install() -> None:
    """Filter uvicorn's loggers and this package's (idempotent: every app instance calls it).

    A logger's filters see only records logged to that very logger, so each of this
    package's module loggers (all imported by the time the app is built) gets its own.
    """
    own = [name for name in logging.root.manager.loggerDict if name.startswith(PACKAGE)]
    for name in (*UVICORN_LOGGERS, PACKAGE, *own):
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
            logger.addFilter(TokenRedactingFilter())
