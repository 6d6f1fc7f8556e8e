"""How deeply a JSON document nests, measured without parsing it (and without recursion).

A deeply nested body (`[[[[…`) made the JSON parser raise RecursionError, a 500. The depth
is measured first over the raw bytes with C-level byte operations only, so a hostile body
costs a few linear passes and never a stack frame per level.
"""

from __future__ import annotations

from itertools import accumulate, count
from operator import sub

__all__ = ["MAX_JSON_DEPTH", "json_depth"]

MAX_JSON_DEPTH = 64
"""Open311 records nest two or three levels; nothing legitimate comes near this."""

_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_WEIGHTS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")  # 2 per opening, 0 per closing


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a UTF-8 JSON text (0: a scalar).

    Brackets inside strings do not count. For invalid JSON the number is only an estimate,
    which is fine: the parser refuses that body anyway.
    """
    if body.count(b"[") + body.count(b"{") == 0:
        return 0
    # Drop escaped backslashes first, then escaped quotes: what is left of a string is
    # its two delimiting quotes and text that cannot end it.
    text = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(text.split(b'"')[0::2])
    brackets = outside.translate(None, _NOT_BRACKETS).translate(_WEIGHTS)
    # After k brackets the depth is opened - closed = 2 * opened - k.
    return max(map(sub, accumulate(brackets), count(1)), default=0)
