"""Event in, notification commands out as Kafka keys and values: the per-event path (pure).

An event near many subscribers makes thousands of commands, and parsing each subscription
into a model, building a SubscriberMatched and serializing it again cost ~100 us a match. So
a command for one match is written straight as JSON: the subscription's JSON the index
already holds, the event's JSON serialized once per event, and a frame taken from the
contract itself (a SubscriberMatched serialized once with marker values), so a field the
contract gains is written too. A person matched by several of their subscriptions (rare)
still goes through the models (`rules.recipient_notifications`). The commands of one event
share one `occurred_at`. tests/unit/matcher/test_commands_oracle.py holds the result equal
to `encode(command)` of the model path.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import TypeAdapter

from connect311_bus.kafka import encode
from connect311_contracts.envelope import utc_now
from connect311_contracts.events import RequestEvent, RequestOpened
from connect311_contracts.notifications import SubscriberMatched
from connect311_contracts.request import ServiceRequest, UtcDatetime
from connect311_contracts.subscriptions import Subscription
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.rules import NOTIFICATION_NS, Hit, Match, find_hits
from connect311_matcher.rules import recipient_notifications as model_notifications

__all__ = ["Outgoing", "encoded_commands", "uuid5"]

_EVENT = TypeAdapter(RequestEvent)
_WHEN = TypeAdapter(UtcDatetime)
_json_string = json.JSONEncoder(ensure_ascii=False).encode


class Outgoing(NamedTuple):
    """One command to publish: its key, its value and the kind of each match it carries."""

    key: bytes
    value: bytes
    kinds: tuple[str, ...]


def encoded_commands(
    index: SubscriptionIndex, event: RequestEvent, now: datetime | None = None
) -> list[Outgoing]:
    """Every command one event makes, one per recipient, as the bytes to publish."""
    hits = find_hits(index, event)
    if not hits:
        return []
    frame = _FRAME.for_event(event, now or utc_now())
    prefix = NOTIFICATION_NS.bytes + f"{event.event_id}/".encode()
    ids = hashlib.sha1(prefix, usedforsecurity=False)  # what uuid5 hashes
    shared = _shared_recipients(hits)
    merged: dict[bytes, list[Hit]] = {key: [] for key in shared}
    places: dict[bytes, int] = {}  # where each shared recipient's commands go in `out`
    out: list[Outgoing] = []
    for hit in hits:
        key, c, distance, rule = hit
        if key in shared:  # rare: one person, several subscriptions; merged below
            places.setdefault(key, len(out))
            merged[key].append(hit)
            continue
        value = frame.fill(
            uuid5(ids, c.subscription_id).encode(),
            c.raw,
            b"null" if distance is None else repr(distance).encode(),
            _json_string(rule[:500]).encode(),
        )
        out.append(Outgoing(key, value, _KINDS.get(c.kind) or (c.kind,)))
    for key, at in reversed(places.items()):  # the last first: earlier places stay put
        out[at:at] = _merged(key, merged[key], event)
    return out


_KINDS = {kind: (kind,) for kind in ("circle", "area", "corridor", "follow", "citywide")}
"""One tuple per kind, not one per command (17k commands an event at 1M: the GC counts them)."""


def _shared_recipients(hits: list[Hit]) -> set[bytes]:
    """Recipients with more than one hit (usually none)."""
    keys = [hit[0] for hit in hits]
    if len(set(keys)) == len(keys):
        return set()
    seen: set[bytes] = set()
    shared = set()
    for key in keys:
        if key in seen:
            shared.add(key)
        seen.add(key)
    return shared


def _merged(key: bytes, group: list[Hit], event: RequestEvent) -> list[Outgoing]:
    """One person's several matches: the model path, which merges them (rules.py)."""
    matches = [Match(c, c.subscription, d, rule) for _, c, d, rule in group]
    return [
        Outgoing(key, encode(command), tuple(m.compiled.kind for m in chunk))
        for chunk, command in model_notifications(key.decode(), matches, event)
    ]


def uuid5(prefix: Any, name: str) -> str:
    """str(uuid.uuid5(namespace, prefix_text + name)), given a SHA-1 already fed the namespace's
    bytes and the prefix (the part shared by an event's commands is hashed once)."""
    h = prefix.copy()
    h.update(name.encode())
    x = h.hexdigest()
    # The first 16 bytes, with the version (5) and the RFC 4122 variant bits set, as uuid does.
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


# ---- the frame: a SubscriberMatched's JSON with holes -------------------------------------------


class _Frame:
    """A command's JSON cut at the values that change: `parts` around `holes` (in order)."""

    def __init__(self, parts: list[bytes], holes: list[str]) -> None:
        self.parts, self.holes = parts, holes
        # What an event's frame is made of, worked out once (per event it cost ~10 us):
        # %-escaped constant text, with "%b" at each per-match hole, around the event's values.
        pieces: list[bytes | str] = [parts[0].replace(b"%", b"%%")]
        for hole, part in zip(holes, parts[1:], strict=True):
            pieces.append(hole if hole in _PER_EVENT else b"%b")
            pieces.append(part.replace(b"%", b"%%"))
        self._pieces = pieces
        # The per-match values arrive in _PER_MATCH order; the template wants them in its own.
        order = [holes.index(name) for name in _PER_MATCH if name in holes]
        self._rank = sorted(range(len(order)), key=order.__getitem__)

    def for_event(self, event: RequestEvent, now: datetime) -> _EventFrame:
        """The frame with the event's own values filled in (the per-match holes remain)."""
        trace = event.trace_id
        values = {
            "occurred_at": _WHEN.dump_json(now),
            "trace_id": b"null" if trace is None else _json_string(trace).encode(),
            "request_event": _EVENT.dump_json(event),
        }
        template = b"".join(
            [p if isinstance(p, bytes) else values[p].replace(b"%", b"%%") for p in self._pieces]
        )
        return _EventFrame(template, self._rank)


class _EventFrame:
    """One event's frame: a %-template with a hole for each per-match value."""

    __slots__ = ("_rank", "_template")

    def __init__(self, template: bytes, rank: list[int]) -> None:
        self._template, self._rank = template, rank

    def fill(self, *values: bytes) -> bytes:
        """The whole JSON, given the per-match values in _PER_MATCH order."""
        return self._template % tuple([values[i] for i in self._rank])


_PER_EVENT = ("occurred_at", "trace_id", "request_event")
_PER_MATCH = ("event_id", "subscription", "distance_m", "matched_rule")


def _contract_frame() -> _Frame:
    """Serialize a command with recognizable values once and cut it where they are."""
    marked = SubscriberMatched(
        event_id="00000000-0000-5000-8000-0000f4a3e1d0",
        occurred_at=datetime.fromisoformat("2001-02-03T04:05:06.789012+00:00"),
        trace_id="trace-marker-5c1d",
        subscription=Subscription.model_validate(
            {
                "subscription_id": "subscription-marker-77e0",
                "email": "marker@example.org",
                "target": {"kind": "circle", "lat": 1.5, "long": 2.5, "radius_m": 125.0},
                "status": "active",
                "created_at": "2001-02-03T04:05:06Z",
            }
        ),
        request_event=RequestOpened(
            event_id="request-event-marker-92b4",
            request=ServiceRequest(
                service_request_id="marker:1",
                source="marker",
                source_request_id="1",
                status="open",
                raw_status="Open",
                lat=1.5,
                long=2.5,
                requested_datetime=datetime.fromisoformat("2001-02-03T04:05:06+00:00"),
            ),
        ),
        distance_m=1234567.125,
        matched_rule="rule-marker-3a9f",
    )
    text = encode(marked)
    found = []
    for name in _HOLES:
        shown = _shown(name, getattr(marked, name))
        if text.count(shown) != 1:
            raise RuntimeError(f"the SubscriberMatched contract changed: {name} in {text!r}")
        found.append((text.index(shown), len(shown), name))
    found.sort()
    parts, at = [], 0
    for start, length, _ in found:
        parts.append(text[at:start])
        at = start + length
    parts.append(text[at:])
    return _Frame(parts, [name for _, _, name in found])


_HOLES = (
    "event_id",
    "occurred_at",
    "trace_id",
    "subscription",
    "request_event",
    "distance_m",
    "matched_rule",
)


def _shown(name: str, value: Any) -> bytes:
    """How a marker value appears in the command's JSON."""
    if name == "event_id":
        return str(value).encode()  # the hole is inside its quotes
    if name == "occurred_at":
        return _WHEN.dump_json(value)
    if name in ("trace_id", "matched_rule"):
        return _json_string(value).encode()
    if name == "distance_m":
        return repr(value).encode()
    if name == "request_event":
        return _EVENT.dump_json(value)
    return encode(value)


_FRAME = _contract_frame()
