"""422 answers that can always be serialised, whatever the client sent.

FastAPI's default handler echoes each invalid input back; JSON has no NaN or Infinity, so
an answer echoing `NaN` failed to serialise and became a 500. Here every echoed value is
made JSON-safe first (non-finite numbers as text, deep or exotic values summarised), and a
non-finite number gets a message that says so instead of a confusing bound check.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = ["install", "json_safe", "safe_errors"]

MAX_ECHO_DEPTH = 8
"""Inputs nested deeper than this are echoed as a placeholder (the field's loc says where)."""
MAX_ECHO_CHARS = 200
"""Longer strings are echoed cut to this length."""


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` as something `json.dumps(allow_nan=False)` accepts."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _non_finite_name(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_ECHO_CHARS else value[:MAX_ECHO_CHARS] + "…"
    if depth >= MAX_ECHO_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {str(k)[:MAX_ECHO_CHARS]: json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    return str(value)[:MAX_ECHO_CHARS]


def _non_finite_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def safe_errors(errors: Any) -> list[dict[str, Any]]:
    """The validation errors with JSON-safe inputs and contexts."""
    result: list[dict[str, Any]] = []
    for error in errors:
        entry: dict[str, Any] = {
            "type": error.get("type", "value_error"),
            "loc": [part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "invalid value")),
        }
        if "input" in error:
            entry["input"] = json_safe(error["input"])
        if _not_finite(error.get("input")):
            field = entry["loc"][-1] if entry["loc"] else "value"
            entry["type"] = "finite_number"
            entry["msg"] = f"{field} must be a finite number, not {entry['input']}"
        elif isinstance(error.get("ctx"), dict):
            entry["ctx"] = json_safe(error["ctx"])
        result.append(entry)
    return result


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": safe_errors(errors)}, status_code=422)


def install(app: FastAPI) -> None:
    """Answer request validation errors with serialisable 422s."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
