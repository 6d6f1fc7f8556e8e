"""Sign-up, volume preview, confirm, one-click unsubscribe and manage."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from connect311_contracts.tokens import InvalidToken
from connect311_map_api.api.models import (
    Accepted,
    ManageAction,
    ManageList,
    Preview,
    PreviewBody,
    SignupBody,
)
from connect311_map_api.api.params import unprocessable
from connect311_map_api.context import AppContext, get_ctx
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import InvalidGeometry, point_matcher, target_bbox, validate_target
from connect311_map_api.core.preview import PREVIEW_DAYS, weekly_alerts
from connect311_map_api.db import queries
from connect311_map_api.signup import NoLongerActive, NotAllowed, RateLimited
from connect311_map_api.web.security import server_page_headers

router = APIRouter(prefix="/api/subscriptions", tags=["subscriptions"])
Ctx = Annotated[AppContext, Depends(get_ctx)]
Token = Annotated[str, Query(min_length=10, max_length=500, description="Token from the email")]
ACCEPTED = (
    "Check your inbox: if the address can receive mail, a confirmation link is on its way. "
    "Alerts start once you confirm."
)
CONFIRMED_PAGE = "/subscriptions/confirmed"
_WHERE = {
    "ip": "from here",
    "addr": "for this address",
    "domain": "for this mail domain",
    "all": "across the city right now",
}


@router.post(
    "",
    status_code=202,
    response_model=Accepted,
    summary="Sign up for alerts (double opt-in)",
    responses={
        422: {"description": "Invalid target or filters, with the reason"},
        429: {"description": "Too many sign-ups; see Retry-After"},
    },
)
async def sign_up(body: SignupBody, request: Request, ctx: Ctx) -> dict[str, str]:
    """Create a pending subscription and send a confirmation email.

    The answer is the same whether or not the address already has subscriptions.
    """
    ip = request.client.host if request.client else "unknown"
    try:
        await ctx.service.sign_up(
            str(body.email), body.target, body.filters, body.delivery, body.label, ip
        )
    except RateLimited as exc:
        ctx.metrics.signups.labels("rate_limited").inc()
        raise HTTPException(
            429,
            detail=f"too many sign-ups {_WHERE.get(exc.scope, 'from here')}; "
            f"try again in {exc.seconds} seconds",
            headers={"Retry-After": str(exc.seconds)},
        ) from exc
    except ValueError as exc:  # InvalidGeometry is a ValueError too
        ctx.metrics.signups.labels("invalid").inc()
        raise unprocessable(str(exc)) from exc
    ctx.metrics.signups.labels("accepted").inc()
    return {"message": ACCEPTED}


@router.post(
    "/preview",
    response_model=Preview,
    summary="Alerts per week this subscription would have produced",
    responses={422: {"description": "Invalid target, with the reason"}},
)
def preview(body: PreviewBody, ctx: Ctx) -> dict[str, Any]:
    """Replay the last 90 days of stored events through the proposed target and filters."""
    try:
        validate_target(body.target, ctx.settings.max_polygon_vertices)
    except InvalidGeometry as exc:
        raise unprocessable(str(exc)) from exc
    f = body.filters
    filters = RequestFilters(
        bbox=target_bbox(body.target),
        service_codes=f.service_codes,
        agencies=f.agencies,
        datasets=f.datasets,
    )
    with ctx.engine.connect() as conn:
        newest = queries.newest_source_at(conn)
        if newest is None:
            return {
                "days": PREVIEW_DAYS,
                "since": None,
                "until": None,
                "total": 0,
                "per_week_average": 0.0,
                "weeks": [],
            }
        since = newest - timedelta(days=PREVIEW_DAYS)
        rows = queries.preview_candidates(conn, filters, since)
    return weekly_alerts(
        [tuple(row) for row in rows],  # type: ignore[misc]
        point_matcher(body.target),
        f.event_kinds,
        since.date(),
        newest.date(),
    )


def _page(title: str, body_html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head><body><main>"
        f"<h1>{html.escape(title)}</h1>{body_html}</main></body></html>",
        status_code=status,
        headers=server_page_headers(),
    )


def _invalid_link(exc: InvalidToken) -> HTMLResponse:
    return _page(
        "This link does not work",
        f"<p>{html.escape(str(exc))}. Sign up again, or use the newest email we sent.</p>",
        400,
    )


@router.get(
    "/confirm",
    response_class=RedirectResponse,
    status_code=303,
    summary="Confirm a subscription",
    responses={
        303: {"description": "To /subscriptions/confirmed (?error=expired|invalid|inactive)"}
    },
)
async def confirm(token: Token, ctx: Ctx) -> Response:
    """Activate a pending subscription, then go to the fixed confirmation page."""
    try:
        await ctx.service.confirm(token)
    except NoLongerActive:
        return RedirectResponse(f"{CONFIRMED_PAGE}?error=inactive", status_code=303)
    except InvalidToken as exc:
        reason = "expired" if "expired" in str(exc) else "invalid"
        return RedirectResponse(f"{CONFIRMED_PAGE}?error={reason}", status_code=303)
    return RedirectResponse(CONFIRMED_PAGE, status_code=303)


@router.get(
    "/unsubscribe",
    response_class=HTMLResponse,
    summary="Unsubscribe page (asks before acting)",
)
def unsubscribe_page(token: Token, ctx: Ctx) -> HTMLResponse:
    """A small page with a button; GET never unsubscribes (mail scanners follow links)."""
    try:
        ctx.service.check_unsubscribe_link(token)
    except InvalidToken as exc:
        return _invalid_link(exc)  # no form: the button could not work
    action = f"/api/subscriptions/unsubscribe?token={quote(token, safe='')}"
    return _page(
        "Unsubscribe from alerts",
        f"<form method='post' action='{html.escape(action)}'>"
        "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<button type='submit'>Unsubscribe</button></form>",
    )


@router.post(
    "/unsubscribe",
    response_class=HTMLResponse,
    summary="One-click unsubscribe (RFC 8058)",
    responses={400: {"description": "Bad link"}},
)
async def unsubscribe(token: Token, ctx: Ctx) -> HTMLResponse:
    """Stop the subscription (body `List-Unsubscribe=One-Click`, or the page's button)."""
    try:
        await ctx.service.unsubscribe(token)
    except InvalidToken as exc:
        return _invalid_link(exc)
    return _page("You are unsubscribed", "<p>You will get no more alerts for this place.</p>")


@router.get(
    "/manage",
    response_model=ManageList,
    summary="Subscriptions of this address",
    responses={400: {"description": "Bad link"}},
)
async def manage_list(token: Token, ctx: Ctx) -> Any:
    """The token owner's subscriptions (never the address, never anyone else's)."""
    try:
        _, subs = await ctx.service.owned(token)
    except InvalidToken as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    return {"subscriptions": [sub.model_dump(exclude={"email"}) for sub in subs]}


@router.post(
    "/manage",
    response_model=ManageList,
    summary="Change delivery, unsubscribe or delete",
    responses={400: {"description": "Bad link"}, 403: {"description": "Not this link's"}},
)
async def manage_change(token: Token, body: ManageAction, ctx: Ctx) -> Any:
    """Apply one change to one of the token owner's subscriptions; returns the new list."""
    try:
        subs = await ctx.service.change(token, body.subscription_id, body.action, body.delivery)
    except InvalidToken as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    except NotAllowed as exc:
        return JSONResponse({"detail": str(exc)}, status_code=403)
    return {"subscriptions": [sub.model_dump(exclude={"email"}) for sub in subs]}
