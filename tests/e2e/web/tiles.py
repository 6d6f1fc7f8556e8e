"""A local base-map tile route for browser tests (no outside host is ever contacted)."""

from __future__ import annotations

import struct
import zlib
from functools import cache

from fastapi import FastAPI, Response

TILE_PATH = "/test-tiles/{z}/{x}/{y}.png"


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


@cache
def tile_png(size: int = 256) -> bytes:
    """A pale 256x256 PNG tile with a darker border, so the tile grid is visible."""
    fill, edge = b"\xe8\xee\xe4", b"\xb8\xc4\xb0"
    inner = b"\x00" + edge + fill * (size - 2) + edge
    border = b"\x00" + edge * size
    raw = border + inner * (size - 2) + border
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def add_tile_route(app: FastAPI) -> None:
    """Serve the same blank tile for every z/x/y (and count requests for it)."""

    async def tile(z: int, x: int, y: int) -> Response:
        app.state.tile_hits = getattr(app.state, "tile_hits", 0) + 1
        return Response(tile_png(), media_type="image/png")

    app.add_api_route(TILE_PATH, tile, methods=["GET"], include_in_schema=False)
