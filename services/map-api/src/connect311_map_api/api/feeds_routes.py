"""Atom feeds (RFC 4287): a map view's requests, one request's timeline, an alert's private feed.

Every feed answers conditional GETs (ETag from the body, Last-Modified from its newest entry)
with 304, pages with RFC 5005 `next` links, and names the city as the author of everything.
The private feed's URL carries a signed token (core/feed_token.py); the manage page shows it
and can replace it, which stops every older URL (410 Gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from connect311_contracts.subscriptions import Subscription, SubscriptionStatus
from connect311_contracts.tokens import InvalidToken
from connect311_map_api.api.params import request_filters, service_levels, unprocessable
from connect311_map_api.context import AppContext, Ctx
from connect311_map_api.core import atom, feed_cursor
from connect311_map_api.core.conditional import etag_of, http_date, not_modified
from connect311_map_api.core.feed_entries import FeedSite, event_entry, request_entry
from connect311_map_api.core.feed_merge import Key
from connect311_map_api.core.feed_overdue import Late, overdue_entry
from connect311_map_api.core.feed_scope import subscription_scope
from connect311_map_api.core.feed_token import read_feed_token, sign_feed_token
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.state import naive_utc
from connect311_map_api.db import feed_tokens, feeds, queries
from connect311_map_api.db import subscription_store as store
from connect311_map_api.db.private_feed import private_page
from connect311_map_api.heavy_work import HEAVY
from connect311_map_api.web.alert_words import describe_alert

router = APIRouter(prefix="/feeds", tags=["feeds"])
manage_router = APIRouter(prefix="/api/subscriptions", tags=["subscriptions"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 200  # entries per page: a feed reader polls, it does not export the city
TIMELINE_MAX = 200  # newest changes of one request (a request rarely has more than a dozen)
VIEW_PARAMS = ("bbox", "status", "service_code", "agency", "dataset", "since", "until", "q")
PUBLIC_CACHE = "public, max-age=60"
PRIVATE_CACHE = "private, max-age=60"
# A feed opened in a browser is data, never a document that runs anything.
FEED_CSP = "default-src 'none'; sandbox"
EPOCH = datetime(2000, 1, 1)  # an empty feed of an empty city has to say some `updated`

Filters = Annotated[RequestFilters, Depends(request_filters)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Entries per page")]
Cursor = Annotated[
    str | None,
    Query(max_length=feed_cursor.MAX_CURSOR, description="From the previous page's next link"),
]
FeedTokenParam = Annotated[
    str, Query(min_length=10, max_length=500, description="From the manage page's feed address")
]
_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {atom.ATOM_TYPE: {}}, "description": "Atom 1.0 feed"},
    304: {"description": "Not modified (If-None-Match / If-Modified-Since)"},
}


def _site(ctx: AppContext) -> FeedSite:
    return FeedSite(
        base_url=ctx.signing.public_base_url,
        author=ctx.settings.feed_author,
        time_zone=ZoneInfo(ctx.settings.display_timezone),
    )


def _answer(request: Request, body: bytes, modified: datetime, cache: str) -> Response:
    """The feed, or 304 when the client's copy is current."""
    etag = etag_of(body)
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(modified),
        "Cache-Control": cache,
        "Content-Security-Policy": FEED_CSP,
    }
    if not_modified(
        request.headers.get("if-none-match"),
        request.headers.get("if-modified-since"),
        etag,
        modified,
    ):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=atom.ATOM_TYPE, headers=headers)


def _query(pairs: Sequence[tuple[str, str]]) -> str:
    return "?" + urlencode(pairs) if pairs else ""


def _paging_links(
    site: FeedSite, path: str, kept: list[tuple[str, str]], cursor: str | None, after: str | None
) -> list[atom.Link]:
    """self, first and (when more entries follow) next, as absolute URLs (RFC 5005)."""
    here = kept + ([("cursor", cursor)] if cursor else [])
    links = [
        atom.Link(site.url(path + _query(here)), "self", atom.ATOM_TYPE),
        atom.Link(site.url(path + _query(kept)), "first", atom.ATOM_TYPE),
    ]
    if after is not None:
        links.append(
            atom.Link(site.url(path + _query([*kept, ("cursor", after)])), "next", atom.ATOM_TYPE)
        )
    return links


def _view_title(f: RequestFilters) -> str:
    parts = [*f.agencies, *f.service_codes, *f.datasets]
    parts += [s.replace("_", " ") for s in f.statuses]
    if f.bbox is not None:
        parts.append("in a map area")
    if f.q:
        parts.append(f"containing “{f.q}”")
    return "311 requests" + (": " + ", ".join(parts) if parts else "")


def _pk_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    try:
        at, key = feed_cursor.decode(cursor)
    except feed_cursor.BadCursor as exc:
        raise unprocessable(str(exc)) from exc
    if not key.isascii() or not key.isdigit() or len(key) > 19:
        raise unprocessable("cursor must be the value of a previous page's next link")
    return at, int(key)


@router.get(
    "/requests.atom",
    response_class=Response,
    responses={**_DOC, 422: {"description": "Bad filter, limit or cursor, with the reason"}},
    summary="Atom feed of a map view (same filters as /api/requests)",
    dependencies=[HEAVY],
)
def requests_feed(
    request: Request,
    ctx: Ctx,
    filters: Filters,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Requests matching the map's filters, newest change first; every change of a request is
    a new entry (id: the request and its change time). Pages follow `rel="next"` links."""
    before = _pk_cursor(cursor)
    with ctx.engine.connect() as conn:
        rows = feeds.changed_page(conn, filters, limit, before)
        newest = None if rows else feeds.newest_change(conn)
    page = rows[:limit]
    after = feed_cursor.encode(page[-1].rank_source_at, page[-1].pk) if len(rows) > limit else None
    site = _site(ctx)
    view = [(k, v) for k, v in request.query_params.multi_items() if k in VIEW_PARAMS]
    kept = view + ([("limit", str(limit))] if limit != DEFAULT_LIMIT else [])
    entries = [request_entry(site, row._mapping) for row in page]
    updated = max((e.updated for e in entries), default=newest or EPOCH)
    view_key = [urlencode(sorted(view))] if view else []  # one feed id per map view
    feed = atom.Feed(
        id=atom.tag_uri(site.authority, "feed", "requests", *view_key),
        title=_view_title(filters),
        subtitle="Newest change first; each change of a request is a new entry.",
        updated=updated,
        author=site.author,
        author_uri=site.url("/"),
        links=[
            *_paging_links(site, "/feeds/requests.atom", kept, cursor, after),
            atom.Link(site.url("/" + _query(view)), "alternate", "text/html"),
        ],
        entries=entries,
    )
    return _answer(request, atom.render(feed), updated, PUBLIC_CACHE)


@router.get(
    "/requests/{service_request_id:path}.atom",
    response_class=Response,
    responses={**_DOC, 404: {"description": "No such request"}},
    summary="Atom feed of one request's timeline",
)
def timeline_feed(request: Request, ctx: Ctx, service_request_id: str) -> Response:
    """One entry per recorded change of the request (its page's timeline), newest first."""
    with ctx.engine.connect() as conn:
        row = queries.one_request(conn, service_request_id)
        if row is None:
            raise HTTPException(404, detail="no request with this service_request_id")
        events = queries.timeline(conn, service_request_id)  # what the request page shows
    site = _site(ctx)
    current = row._mapping
    newest = list(reversed(events))[:TIMELINE_MAX]
    entries = [event_entry(site, {**current, **e._mapping}) for e in newest]
    updated = max((e.updated for e in entries), default=current["rank_source_at"])
    path = f"/feeds/requests/{quote(service_request_id, safe='')}.atom"
    what = current["service_name"] or current["service_code"] or "Service request"
    at = f" at {current['address']}" if current["address"] else ""
    feed = atom.Feed(
        id=atom.tag_uri(site.authority, "feed", "request", service_request_id),
        title=f"Request {service_request_id}: {what}{at}",
        subtitle="Every recorded change of this request, newest first.",
        updated=updated,
        author=site.author,
        author_uri=site.url("/"),
        links=[
            atom.Link(site.url(path), "self", atom.ATOM_TYPE),
            atom.Link(site.request_url(service_request_id), "alternate", "text/html"),
        ],
        entries=entries,
    )
    return _answer(request, atom.render(feed), updated, PUBLIC_CACHE)


def _event_cursor(cursor: str | None) -> Key | None:
    if cursor is None:
        return None
    try:
        return feed_cursor.decode(cursor)
    except feed_cursor.BadCursor as exc:
        raise unprocessable(str(exc)) from exc


def now() -> datetime:
    """The clock overdue entries are judged by (naive UTC; tests move it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _owned_feed(ctx: AppContext, token: str) -> tuple[Subscription, datetime | None]:
    """The active subscription a feed token names, or the HTTP error a reader should get."""
    try:
        sid, version = read_feed_token(ctx.signing.secret_key.get_secret_value(), token)
    except InvalidToken as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    with ctx.engine.connect() as conn:
        sub = store.get(conn, sid)
        current, rotated = feed_tokens.version(conn, sid)
        edited = feeds.subscription_edited_at(conn, sid)
    if sub is None:
        raise HTTPException(410, detail="this alert was deleted")
    if version != current:
        raise HTTPException(410, detail="this feed address was replaced on the manage page")
    if sub.status is not SubscriptionStatus.ACTIVE:
        # Paused, unconfirmed or stopped alerts send no emails, so their feed has nothing.
        raise HTTPException(404, detail=f"this alert is not active ({sub.status.value})")
    return sub, max((t for t in (rotated, edited) if t is not None), default=None)


@router.get(
    "/subscription.atom",
    response_class=Response,
    responses={
        **_DOC,
        404: {"description": "Not a feed address, or the alert is not active"},
        410: {"description": "The alert was deleted or its feed address replaced"},
    },
    summary="Private Atom feed of one alert (what its emails carry)",
)
def subscription_feed(
    request: Request,
    ctx: Ctx,
    token: FeedTokenParam,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The changes the alert's emails carry: its place, filters and kinds, newest first,
    and (when the alert asks for them) its requests that went overdue, at their due time."""
    before = _event_cursor(cursor)
    sub, changed = _owned_feed(ctx, token)
    scope = subscription_scope(sub)
    levels = None
    if scope.overdue:  # unreadable service levels: 503, as the stats and the preview say
        levels = service_levels(ctx.settings.service_levels_file, ctx.settings.display_timezone)
    with ctx.engine.connect() as conn:
        items, end = private_page(conn, scope, levels, now(), limit, before)
    after = feed_cursor.encode(*end) if end is not None else None
    site = _site(ctx)
    entries = [
        overdue_entry(site, item) if isinstance(item, Late) else event_entry(site, item)
        for item in items
    ]
    # An edit or a new address changes what the feed holds even when no entry is newer;
    # an overdue entry appears when its due time passes, or later when the change that made
    # a passed due time known was stored (a late ingest, a new expected date).
    times = [e.updated for e in entries] + [changed or EPOCH]
    times += [item.appeared_at for item in items if isinstance(item, Late)]
    if sub.confirmed_at is not None:
        times.append(naive_utc(sub.confirmed_at))
    updated = max(naive_utc(t) for t in times)
    kept = [("token", token)] + ([("limit", str(limit))] if limit != DEFAULT_LIMIT else [])
    feed = atom.Feed(
        id=atom.tag_uri(site.authority, "feed", "subscription", sub.subscription_id),
        # The alert described by system facts only: never its address or its label.
        title="Your alert: " + describe_alert(sub.model_copy(update={"label": None})),
        subtitle="What this alert's emails carry, newest first.",
        updated=updated,
        author=site.author,
        author_uri=site.url("/"),
        links=_paging_links(site, "/feeds/subscription.atom", kept, cursor, after),
        entries=entries,
    )
    response = _answer(request, atom.render(feed), updated, PRIVATE_CACHE)
    response.headers["Referrer-Policy"] = "no-referrer"  # the URL is the credential
    return response


class FeedAddress(BaseModel):
    """One alert's private feed URL."""

    subscription_id: str
    feed_url: str


class FeedAddresses(BaseModel):
    """The private feed URLs of the alerts a manage link belongs to."""

    feeds: list[FeedAddress]


class NewFeedAddress(BaseModel):
    """Replace one alert's feed URL: the old one stops working."""

    model_config = ConfigDict(extra="forbid")

    subscription_id: str = Field(min_length=1, max_length=100)


ManageToken = Annotated[
    str, Query(min_length=10, max_length=500, description="Token from the email")
]


def _addresses(ctx: AppContext, subs: list[Subscription]) -> dict[str, Any]:
    secret = ctx.signing.secret_key.get_secret_value()
    with ctx.engine.connect() as conn:
        versions = feed_tokens.versions(conn, [s.subscription_id for s in subs])
    site = _site(ctx)
    return {
        "feeds": [
            {
                "subscription_id": sid,
                "feed_url": site.url(
                    "/feeds/subscription.atom"
                    + _query([("token", sign_feed_token(secret, sid, v))])
                ),
            }
            for sid, v in versions.items()
        ]
    }


@manage_router.get(
    "/feeds",
    response_model=FeedAddresses,
    summary="Private feed URLs of this address's alerts",
    responses={400: {"description": "Bad link"}},
)
async def feed_addresses(token: ManageToken, ctx: Ctx) -> Any:
    """Each of the manage link owner's alerts with its private Atom feed URL."""
    try:
        _, subs = await ctx.service.owned(token)
    except InvalidToken as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    return await run_in_threadpool(_addresses, ctx, subs)


@manage_router.post(
    "/feeds",
    response_model=FeedAddresses,
    summary="Replace one alert's private feed URL (the old one stops working)",
    responses={400: {"description": "Bad link"}, 403: {"description": "Not this link's alert"}},
)
async def new_feed_address(token: ManageToken, body: NewFeedAddress, ctx: Ctx) -> Any:
    """Revoke the alert's feed URL and issue a new one; returns every feed URL again."""
    try:
        _, subs = await ctx.service.owned(token)
    except InvalidToken as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    if body.subscription_id not in {s.subscription_id for s in subs}:
        return JSONResponse({"detail": "this link cannot change that alert"}, status_code=403)

    def rotate() -> dict[str, Any]:
        with ctx.engine.begin() as conn:
            feed_tokens.rotate(conn, body.subscription_id)
        return _addresses(ctx, subs)

    return await run_in_threadpool(rotate)
