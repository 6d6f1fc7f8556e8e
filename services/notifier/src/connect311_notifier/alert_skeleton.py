"""An alert's shared part rendered once per event, each recipient's own words filled in.

When one event fans out to thousands of subscribers, every email says the same about the
request (title, status, notes, times, links to it) in the same language; only a few values
are the recipient's own: the distance, the place and subscription names, the matched rule,
and the manage and unsubscribe links. The templates are rendered once per event with a
marker in each of those places, cut at the markers, and each email joins the pieces with
its values (HTML-escaped in the HTML part, exactly as autoescape escapes them), so the
bytes are those a full render writes (tests/unit/notifier/test_alert_skeleton.py).

The markers carry a random per-process token, so no request text can forge one.
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from markupsafe import escape

from connect311_contracts.events import RequestEvent
from connect311_notifier.settings import Branding

__all__ = ["FILLED", "Skeleton", "SkeletonCache", "SkeletonKey", "mark"]

FILLED = ("distance", "place", "name", "rule", "manage", "unsubscribe")
"""The per-recipient values, by the name their marker carries."""
_TOKEN = secrets.token_hex(8)
_MARKER = re.compile(f"@@{_TOKEN}:([a-z]+)@@")
CACHED_EVENTS = 32
"""Skeletons kept at least (least recently used dropped): a burst is one event; a few
interleave. The sender raises it to the emails of one claimed batch (Sender.__init__)."""

SkeletonKey = tuple[str, str, bool, bool]
"""(request event id, language, follow update, has a distance): one rendering each."""


def mark(name: str) -> str:
    """The stand-in for one per-recipient value (one of FILLED)."""
    return f"@@{_TOKEN}:{name}@@"


def _cut(rendered: str) -> tuple[str, ...]:
    """Text and marker names alternating: text, name, text, ..., text."""
    return tuple(_MARKER.split(rendered))


def _join(pieces: tuple[str, ...], values: Mapping[str, str]) -> str:
    return "".join(values[piece] if i % 2 else piece for i, piece in enumerate(pieces))


@dataclass(frozen=True)
class Skeleton:
    """One event's alert in one language, rendered once with markers."""

    event: RequestEvent
    """What it was rendered from: a cached skeleton serves only an equal event."""
    subject: str
    branding: Branding
    text: tuple[str, ...]
    html: tuple[str, ...]

    @classmethod
    def of(
        cls, event: RequestEvent, subject: str, branding: Branding, text: str, html: str
    ) -> Skeleton:
        """From the text and HTML rendered with `mark(...)` for every per-recipient value."""
        return cls(event, subject, branding, _cut(text), _cut(html))

    def fill(self, values: Mapping[str, str]) -> tuple[str, str]:
        """The text and HTML bodies with one recipient's values."""
        escaped = {name: str(escape(value)) for name, value in values.items()}
        return _join(self.text, values), _join(self.html, escaped)


class SkeletonCache:
    """The skeletons of the last few events, rendered on first use."""

    def __init__(self, size: int = CACHED_EVENTS) -> None:
        self.size = size
        self._kept: OrderedDict[SkeletonKey, Skeleton] = OrderedDict()
        self.rendered = 0
        """Skeletons rendered (misses): one per event and language in a burst."""

    def hold_at_least(self, size: int) -> None:
        """Keep at least `size` skeletons from now on (never fewer than already kept)."""
        self.size = max(self.size, size)

    def get(
        self, key: SkeletonKey, event: RequestEvent, render: Callable[[], Skeleton]
    ) -> Skeleton:
        """The skeleton for `key`, rendered by `render` unless one for an equal event is kept
        (an event id seen again with other content is rendered afresh)."""
        kept = self._kept.get(key)
        if kept is not None and kept.event == event:
            self._kept.move_to_end(key)
            return kept
        skeleton = render()
        self.rendered += 1
        self._kept[key] = skeleton
        self._kept.move_to_end(key)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return skeleton
