"""Sign-up, volume preview, confirm, one-click unsubscribe and manage."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import StrictUndefined
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from connect311_contracts.events import EventKind
from connect311_contracts.subscriptions import Subscription
from connect311_contracts.tokens import InvalidToken
from connect311_contracts.webhooks import WebhookChannel
from connect311_map_api.api.params import service_levels, unprocessable
from connect311_map_api.api.subscription_models import (
    Accepted,
    ManageAction,
    ManagedWebhook,
    ManageList,
    Preview,
    PreviewBody,
    SignupBody,
    WebhookRotate,
    WebhookSecret,
)
from connect311_map_api.context import AppContext, Ctx
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import InvalidGeometry, point_matcher, target_bbox, validate_target
from connect311_map_api.core.preview import PREVIEW_DAYS, history_window, weekly_alerts
from connect311_map_api.db import queries
from connect311_map_api.db import subscription_store as store
from connect311_map_api.db.overdue_queries import overdue_candidates
from connect311_map_api.signup_rules import NoLongerActive, NotAllowed, RateLimited
from connect311_map_api.web.alert_words import describe_alert, followed_summary
from connect311_map_api.web.confirmed import CONFIRMED_COOKIE
from connect311_map_api.web.i18n import (
    N_,
    available_languages,
    gettext_for,
    language_context,
    page_environment,
    request_language,
)
from connect311_map_api.web.language import supported
from connect311_map_api.web.pages import TEMPLATES_DIR
from connect311_map_api.web.security import server_page_headers

router = APIRouter(prefix="/api/subscriptions", tags=["subscriptions"])
Token = Annotated[str, Query(min_length=10, max_length=500, description="Token from the email")]
ACCEPTED = N_(
    "Check your inbox: if the address can receive mail, a confirmation link is on its way. "
    "Alerts start once you confirm."
)
CONFIRMED_PAGE = "/subscriptions/confirmed"
_WHERE = {
    "ip": N_("from here"),
    "addr": N_("for this address"),
    "domain": N_("for this mail domain"),
    "all": N_("across the city right now"),
}
TOO_MANY = N_("too many sign-ups %(where)s; try again in %(seconds)s seconds")
# The token errors in words a person reads on the unsubscribe page (contracts/tokens.py and
# signup.py raise them); anything else reads as an invalid link.
_LINK_REASONS = {
    "this link has expired": N_("This link has expired."),
    "this link is not valid": N_("This link is not valid."),
    "this subscription no longer exists": N_("This alert no longer exists."),
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
async def sign_up(
    body: SignupBody, request: Request, response: Response, ctx: Ctx
) -> dict[str, Any]:
    """Create a pending subscription and send a confirmation email.

    The answer is the same whether or not the address already has subscriptions. With a
    `webhook`, it carries the webhook's signing secret: shown this once, never again.
    """
    ip = request.client.host if request.client else "unknown"
    # The emails are written in the language of the page the person signed up on (which
    # the page sends), else the one this request negotiates.
    language = supported(body.language, available_languages()) or request_language(request)
    _ = gettext_for(language)
    hook = body.webhook
    try:
        issued = await ctx.service.sign_up(
            str(body.email),
            body.target,
            body.filters,
            body.delivery,
            body.label,
            ip,
            language=language,
            webhook=WebhookChannel(url=hook.url, format=hook.format) if hook else None,
            email_alerts=body.email_alerts,
        )
    except RateLimited as exc:
        ctx.metrics.signups.labels("rate_limited").inc()
        where = _(_WHERE.get(exc.scope, _WHERE["ip"]))
        raise HTTPException(
            429,
            detail=_(TOO_MANY) % {"where": where, "seconds": exc.seconds},
            headers={"Retry-After": str(exc.seconds)},
        ) from exc
    except ValueError as exc:  # InvalidGeometry is a ValueError too
        ctx.metrics.signups.labels("invalid").inc()
        raise unprocessable(str(exc)) from exc
    ctx.metrics.signups.labels("accepted").inc()
    if issued:
        response.headers["Cache-Control"] = "no-store"  # it carries a secret
    return {"message": _(ACCEPTED), "webhook": asdict(issued) if issued else None}


@router.post(
    "/preview",
    response_model=Preview,
    summary="Alerts per week this subscription would have produced",
    responses={422: {"description": "Invalid target, with the reason"}},
)
def preview(body: PreviewBody, ctx: Ctx) -> dict[str, Any]:
    """Replay the stored events (at most the last 90 days) through the target and filters.

    The weekly rate divides by the days of data actually present, stated in the answer.
    """
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
        first = queries.first_requested_at(conn)
        if newest is None or first is None:
            return {
                "days": PREVIEW_DAYS,
                "history_days": 0.0,
                "short_history": True,
                "since": None,
                "until": None,
                "total": 0,
                "per_week_average": 0.0,
                "weeks": [],
            }
        since, until = history_window(first, newest)
        rows = [tuple(row) for row in queries.preview_candidates(conn, filters, since)]
        if EventKind.OVERDUE in f.event_kinds:  # asked for only; history never holds them
            zone = ctx.settings.display_timezone
            levels = service_levels(ctx.settings.service_levels_file, zone)
            rows += overdue_candidates(conn, filters, levels, since, until)
    return weekly_alerts(
        rows,
        point_matcher(body.target),
        f.event_kinds,
        since,
        until,
    )


_PAGES = page_environment(TEMPLATES_DIR, undefined=StrictUndefined)


def _page(request: Request, title: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A server-rendered, script-free page in the site's layout (unsubscribe)."""
    values = {"state": "", "reason": "", "alert_name": None, "action": "", "manage_url": ""}
    language = language_context(request)
    body = _PAGES.get_template("unsubscribe.html").render(
        title=title, **(values | language | context)
    )
    headers = {**server_page_headers(), "Content-Language": language["lang"]}
    return HTMLResponse(body, status_code=status, headers=headers)


def _invalid_link(request: Request, exc: InvalidToken) -> HTMLResponse:
    reason = _LINK_REASONS.get(str(exc), _LINK_REASONS["this link is not valid"])
    return _page(request, N_("This link does not work"), 400, state="invalid", reason=reason)


def _followed(conn: Connection, sub: Subscription) -> dict[str, Any] | None:
    if sub.target.kind != "follow":
        return None
    row = queries.one_request(conn, sub.target.service_request_id)
    return followed_summary(row) if row is not None else None


def _alert_name(ctx: AppContext, subscription_id: str, lang: str) -> str | None:
    """How the unsubscribe page names the alert (None once it was deleted)."""
    with ctx.engine.connect() as conn:
        sub = store.get(conn, subscription_id)
        return describe_alert(sub, _followed(conn, sub), lang) if sub is not None else None


def _managed(ctx: AppContext, subs: list[Subscription]) -> dict[str, Any]:
    """The manage list: each alert without its address, a followed request named."""
    with ctx.engine.connect() as conn:
        checks = store.webhook_checks(conn, subs)
        return {
            "subscriptions": [
                {
                    **sub.model_dump(exclude={"email", "webhook"}),
                    "webhook": ManagedWebhook.seen(sub.webhook, checks.get(sub.subscription_id)),
                    "followed": _followed(conn, sub),
                }
                for sub in subs
            ]
        }


@router.get(
    "/confirm",
    response_class=RedirectResponse,
    status_code=303,
    summary="Confirm a subscription",
    responses={
        303: {"description": "To /subscriptions/confirmed (?error=expired|invalid|inactive)"}
    },
)
async def confirm(
    token: Token,
    ctx: Ctx,
    lang: Annotated[str | None, Query(max_length=12, description="The page's language")] = None,
) -> Response:
    """Activate a pending subscription, then go to the fixed confirmation page."""
    chosen = supported(lang, available_languages())
    page = f"{CONFIRMED_PAGE}?lang={chosen}&" if chosen else f"{CONFIRMED_PAGE}?"
    try:
        await ctx.service.confirm(token)
    except NoLongerActive:
        return RedirectResponse(f"{page}error=inactive", status_code=303)
    except InvalidToken as exc:
        reason = "expired" if "expired" in str(exc) else "invalid"
        return RedirectResponse(f"{page}error={reason}", status_code=303)
    done = RedirectResponse(page.rstrip("?&"), status_code=303)
    # The page names the alert from this token (see web/confirmed.py); the URL stays fixed.
    done.set_cookie(
        CONFIRMED_COOKIE,
        token,
        max_age=600,
        path=CONFIRMED_PAGE,
        httponly=True,
        samesite="lax",
        secure=ctx.signing.public_base_url.startswith("https:"),
    )
    return done


@router.get(
    "/unsubscribe",
    response_class=HTMLResponse,
    summary="Unsubscribe page (asks before acting)",
)
def unsubscribe_page(token: Token, request: Request, ctx: Ctx) -> HTMLResponse:
    """A small page with a button; GET never unsubscribes (mail scanners follow links)."""
    try:
        sid = ctx.service.check_unsubscribe_link(token)
    except InvalidToken as exc:
        return _invalid_link(request, exc)  # no form: the button could not work
    return _page(
        request,
        N_("Unsubscribe from alerts"),
        state="ask",
        alert_name=_alert_name(ctx, sid, request_language(request)),
        # The answer page stays in this page's language (an email link may name it).
        action=f"/api/subscriptions/unsubscribe?token={quote(token, safe='')}"
        f"&lang={request_language(request)}",
        manage_url=ctx.service.manage_path(sid),
    )


@router.post(
    "/unsubscribe",
    response_class=HTMLResponse,
    summary="One-click unsubscribe (RFC 8058)",
    responses={400: {"description": "Bad link"}},
)
async def unsubscribe(token: Token, request: Request, ctx: Ctx) -> HTMLResponse:
    """Stop the subscription (body `List-Unsubscribe=One-Click`, or the page's button)."""
    try:
        sid = await ctx.service.unsubscribe(token)
    except InvalidToken as exc:
        return _invalid_link(request, exc)
    name = await run_in_threadpool(_alert_name, ctx, sid, request_language(request))
    return _page(
        request,
        N_("You are unsubscribed"),
        state="done",
        alert_name=name,
        manage_url=ctx.service.manage_path(sid) if name is not None else "",
    )


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
    return await run_in_threadpool(_managed, ctx, subs)


@router.post(
    "/webhook/rotate",
    response_model=WebhookSecret,
    summary="A new signing secret for a subscription's webhook (shown once)",
    responses={
        400: {"description": "Bad link"},
        403: {"description": "Not this link's subscription, or it has no webhook"},
    },
)
async def rotate_webhook_secret(
    token: Token, body: WebhookRotate, response: Response, ctx: Ctx
) -> Any:
    """Replace the webhook's secret; the old one keeps signing beside it for 24 hours.

    Also turns a webhook the notifier turned off back on (verified afresh before its next
    delivery). Behind the manage link, like every change.
    """
    try:
        issued = await ctx.service.rotate_webhook(token, body.subscription_id)
    except InvalidToken as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    except NotAllowed as exc:
        return JSONResponse({"detail": str(exc)}, status_code=403)
    response.headers["Cache-Control"] = "no-store"
    return asdict(issued)


@router.post(
    "/manage",
    response_model=ManageList,
    summary="Change delivery, place, radius or filters; pause, resume or delete",
    responses={
        400: {"description": "Bad link"},
        403: {"description": "Not this link's, or not allowed in the alert's state"},
        422: {"description": "An edit the subscription rules refuse, with the reason"},
    },
)
async def manage_change(token: Token, body: ManageAction, ctx: Ctx) -> Any:
    """Apply one change to one of the token owner's subscriptions; returns the new list.

    Every change is published on subscriptions.v1 as sign-up's are, so matchers follow it.
    """
    if (body.lat is None) != (body.long is None):
        raise unprocessable("a new place needs both lat and long: send both, or neither")
    place = (body.lat, body.long) if body.lat is not None and body.long is not None else None
    try:
        subs = await ctx.service.change(
            token,
            body.subscription_id,
            body.action,
            body.delivery,
            radius_m=body.radius_m,
            filters=body.filters,
            place=place,
        )
    except InvalidToken as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    except NotAllowed as exc:
        return JSONResponse({"detail": str(exc)}, status_code=403)
    except ValueError as exc:
        raise unprocessable(str(exc)) from exc
    return await run_in_threadpool(_managed, ctx, subs)
