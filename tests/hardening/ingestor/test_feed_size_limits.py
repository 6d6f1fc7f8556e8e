"""100 MB feed answers (endless, lying about their length, or a gzip bomb) are refused while
memory stays bounded: the body is streamed and the read stops at the size limit."""

from __future__ import annotations

import gzip
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from connect311_ingestor.parsers.open311 import parse_requests
from connect311_ingestor.records import Rejected
from connect311_ingestor.sources.http import Fetcher, FetchError, TooLarge

HUNDRED_MB = 100 * 1024 * 1024
LIMIT = 2 * 1024 * 1024
CHUNK = b"[" + b'{"service_request_id": "1", "status": "open"},' * 1300  # ~64 KB of JSON
SMALL = b'[{"service_request_id": "1", "status": "open"}]'
BOMB = gzip.compress(b"\0" * HUNDRED_MB, compresslevel=9)  # ~100 KB on the wire


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path == "/small-gzip":
            packed = gzip.compress(SMALL)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(packed)))
            self.end_headers()
            self._write(packed)
            return
        if self.path == "/corrupt":
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", "2000")
            self.end_headers()
            self._write(BOMB[:10] + b"\xff" * 1990)
            return
        if self.path == "/bomb":
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(BOMB)))
            self.end_headers()
            self._write(BOMB)
            return
        if self.path == "/lying":
            self.send_header("Content-Length", "1000")  # says small, sends 100 MB
        self.end_headers()
        sent = 0
        while sent < HUNDRED_MB and self._write(CHUNK):
            sent += len(CHUNK)

    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
        except OSError:  # the client stopped reading at its limit
            return False
        return True

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("path", ["/endless", "/bomb"])
async def test_oversized_answers_are_refused_with_bounded_memory(server: str, path: str) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        fetcher = Fetcher(client, max_bytes=LIMIT, retries=0)
        tracemalloc.start()
        try:
            with pytest.raises(TooLarge, match=f"more than {LIMIT} bytes"):
                await fetcher.get(f"{server}{path}")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # Generous: the kept prefix, a copy while growing, and decoder buffers - not 100 MB.
    assert peak < 8 * LIMIT, f"peak {peak / 1e6:.1f} MB"


async def test_a_lying_content_length_gets_only_what_it_declared(server: str) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        body = await Fetcher(client, max_bytes=LIMIT, retries=0).get(f"{server}/lying")
    assert len(body) == 1000  # the HTTP parser stops at the declared length
    (result,) = parse_requests(body, source="lying", fmt="json", location="lying")
    assert isinstance(result, Rejected) and result.reason.value == "invalid_json"
    assert "not valid JSON" in result.detail


async def test_corrupt_compression_is_a_clear_fetch_error(server: str) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        with pytest.raises(FetchError, match="corrupt compressed body"):
            await Fetcher(client, max_bytes=LIMIT, retries=0).get(f"{server}/corrupt")


async def test_compressed_answers_within_the_limit_are_decoded(server: str) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        body = await Fetcher(client, max_bytes=1000, retries=0).get(f"{server}/small-gzip")
    assert body == SMALL
