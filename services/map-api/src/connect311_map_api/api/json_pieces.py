"""A large JSON body encoded a list item at a time, so that it never holds the interpreter.

The stdlib's C encoder keeps the GIL for the whole of one call: a single `json.dumps` of a
1,000-feature page (~2 MB) held it for ~100 ms, and the event loop's thread, waiting for it,
answered no one meanwhile (`bench/map_tiles.py` printed "event loop blocked for 112 ms" on the
old bbox endpoint). Encoding each item of the top-level lists on its own lets the interpreter
switch threads between items; the bytes are the same as one `json.dumps` with these options.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["compact_json_bytes"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def compact_json_bytes(content: Mapping[str, Any]) -> bytes:
    """`json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))` as
    UTF-8, each item of the mapping's list values encoded by its own call."""
    return "".join(_object(content)).encode("utf-8")


def _object(content: Mapping[str, Any]) -> Iterator[str]:
    yield "{"
    for index, (key, value) in enumerate(content.items()):
        if index:
            yield ","
        yield _ENCODER.encode(key)
        yield ":"
        if isinstance(value, list):
            yield "["
            yield ",".join(_ENCODER.encode(item) for item in value)
            yield "]"
        else:
            yield _ENCODER.encode(value)
    yield "}"
