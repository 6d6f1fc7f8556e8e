"""HTTP edge: authenticated push of Open311 requests, /healthz and /metrics."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from connect311_bus.auth import bearer_matches
from connect311_contracts.rejects import RejectReason
from connect311_ingestor.json_depth import MAX_JSON_DEPTH, json_depth
from connect311_ingestor.parsers.open311 import parse_record
from connect311_ingestor.parsers.redact import raw_text
from connect311_ingestor.pipeline import Ingestor, Outcome
from connect311_ingestor.records import ParseResult, Rejected
from connect311_ingestor.settings import IngestorSettings

HealthCheck = Callable[[], Awaitable[Mapping[str, str]]]

PUSH_DISABLED = (
    "push is disabled: set INGESTOR_PUSH_TOKENS to one or more comma-separated bearer tokens "
    "and restart the ingestor"
)


class BodyTooLarge(Exception):
    """The request body exceeded the configured limit."""


class JsonTooDeep(ValueError):
    """The JSON body nests deeper than MAX_JSON_DEPTH (the parser would recurse that deep)."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def authorized(header: str | None, tokens: frozenset[str]) -> bool:
    """True when the Authorization header carries one of the tokens (the shared parser)."""
    return bearer_matches(header, tokens)


def _items(payload: Any, source: str) -> list[ParseResult]:
    records = payload if isinstance(payload, list) else [payload]
    results: list[ParseResult] = []
    for index, record in enumerate(records):
        where = f"push #{index}"
        if isinstance(record, dict):
            results.append(parse_record(record, source=source, location=where))
        else:
            detail = f"expected an object in Open311 field names, got {type(record).__name__}"
            raw = raw_text(record)
            results.append(Rejected(RejectReason.UNEXPECTED_SHAPE, detail, raw, where))
    return results


def _payload(body: bytes, content_type: str) -> Any:
    """JSON (one request or a list), or one request form-encoded as Open311 POSTs are."""
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", errors="strict"), keep_blank_values=False))
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise JsonTooDeep(
            f"JSON nests {depth} levels deep; at most {MAX_JSON_DEPTH} are allowed, "
            "send flat Open311 records"
        )
    try:
        return json.loads(body)
    except RecursionError as exc:  # a body the byte scan misjudged (e.g. UTF-16): still a 400
        raise JsonTooDeep(f"JSON nests too deeply; at most {MAX_JSON_DEPTH} levels") from exc


def _answer(index: int, outcome: Outcome) -> dict[str, Any]:
    if outcome.reject is not None:
        return {
            "index": index,
            "status": "rejected",
            "reason": outcome.reject.reason.value,
            "detail": outcome.reject.detail,
        }
    if outcome.excluded:
        return {
            "index": index,
            "status": "excluded",
            "service_request_id": outcome.service_request_id,
        }
    return {
        "index": index,
        "status": "accepted",
        "service_request_id": outcome.service_request_id,
        "event_type": outcome.event_type,
    }


async def _broker_down(_request: Request, exc: Exception) -> Response:
    """503 while the broker is away: nothing of the batch was recorded, so it can be resent."""
    return JSONResponse(
        {
            "detail": f"the event broker is unavailable ({type(exc).__name__}: {exc}); nothing "
            "was stored, send the same batch again later"
        },
        status_code=503,
        headers={"Retry-After": "30"},
    )


def create_app(ingestor: Ingestor, settings: IngestorSettings, health: HealthCheck) -> FastAPI:
    """The ingestor's HTTP app over an already-running ingestor."""
    app = FastAPI(title="Connect311 ingestor", version="1")
    app.add_exception_handler(KafkaError, _broker_down)
    tokens = settings.tokens()
    source = settings.push_source

    @app.post("/api/v1/requests")
    async def push(request: Request) -> Response:
        """Accept one request or a list in Open311 field names (JSON, or one form-encoded)."""
        if not tokens:
            return JSONResponse({"detail": PUSH_DISABLED}, status_code=503)
        if not authorized(request.headers.get("authorization"), tokens):
            return JSONResponse(
                {"detail": "missing or unknown bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            body = await read_limited(request, settings.push_max_bytes)
        except BodyTooLarge:
            detail = f"body larger than {settings.push_max_bytes} bytes; send smaller batches"
            return JSONResponse({"detail": detail}, status_code=413)
        content_type = request.headers.get("content-type", "")
        try:
            # In a worker thread: a large body must not hold up the event loop.
            payload = await run_in_threadpool(_payload, body, content_type)
        except (json.JSONDecodeError, UnicodeDecodeError, JsonTooDeep) as exc:
            reject = Rejected(RejectReason.INVALID_JSON, str(exc), raw_text(body), "push")
            await ingestor.ingest([reject], source=source)
            return JSONResponse(
                {"detail": f"body is not valid JSON: {exc}", "reason": "invalid_json"},
                status_code=400,
            )
        _, outcomes = await ingestor.ingest(_items(payload, source), source=source)
        answers = [_answer(i, o) for i, o in enumerate(outcomes)]
        accepted = sum(1 for a in answers if a["status"] == "accepted")
        return JSONResponse(
            {"accepted": accepted, "rejected": len(answers) - accepted, "results": answers}
        )

    @app.get("/healthz")
    async def healthz() -> Response:
        """200 when the broker and the database answer, 503 otherwise (with which failed)."""
        checks = dict(await health())
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(ingestor.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
