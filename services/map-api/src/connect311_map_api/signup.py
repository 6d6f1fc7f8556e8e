"""Subscription life cycle: sign-up, confirm, unsubscribe, manage, bounce, republish.

A subscription may carry a webhook: its URL is checked as the notifier checks it (https to a
public host unless the allow-list says otherwise), and its secret is derived from the
shared key (contracts.webhooks), shown once at sign-up and at each rotation, never stored.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from connect311_contracts.notifications import ConfirmationRequested
from connect311_contracts.settings import SigningSettings
from connect311_contracts.subscriptions import (
    DEFAULT_LANGUAGE,
    Delivery,
    Subscription,
    SubscriptionBounced,
    SubscriptionFilters,
    SubscriptionStatus,
)
from connect311_contracts.tokens import (
    InvalidToken,
    TokenPurpose,
    read_subscription_token,
    sign_subscription_token,
)
from connect311_contracts.webhook_url import Refused, check_url
from connect311_contracts.webhooks import WebhookChannel, webhook_secret
from connect311_map_api.core.geo import InvalidGeometry, Target, validate_target
from connect311_map_api.db import department_queries, queries
from connect311_map_api.db import subscription_store as store
from connect311_map_api.mailbox import normalized_mailbox
from connect311_map_api.publisher import NoPublisher, Publisher, PublishUnavailable
from connect311_map_api.ratelimit import SignupLimiter
from connect311_map_api.settings import MapApiSettings
from connect311_map_api.signup_rules import (
    IssuedSecret,
    NoLongerActive,
    NotAllowed,
    RateLimited,
    check_resumable,
    edited,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class SubscriptionService:
    """Owns subscriptions: every change is stored, then published."""

    def __init__(
        self,
        engine: Engine,
        publisher: Publisher,
        settings: MapApiSettings,
        signing: SigningSettings,
    ) -> None:
        self._engine = engine
        self._publisher = publisher
        self._settings = settings
        self._signing = signing
        self._limiter = SignupLimiter(
            settings.rate_limit_ip,
            settings.rate_limit_email,
            self._secret(),
            per_domain=settings.rate_limit_domain,
            confirmations=settings.rate_limit_confirmations,
        )
        self._mailbox_rules = settings.mailbox_rules()

    async def _db(self, work: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self._engine.begin() as conn:
                return work(conn)

        return await run_in_threadpool(run)

    def _secret(self) -> str:
        return self._signing.secret_key.get_secret_value()

    def _read(self, purpose: TokenPurpose, token: str, max_age_s: int | None) -> str:
        return read_subscription_token(self._secret(), purpose, token, max_age_s)

    async def sign_up(
        self,
        email: str,
        target: Target,
        filters: SubscriptionFilters,
        delivery: Delivery,
        label: str | None,
        client_ip: str,
        language: str = DEFAULT_LANGUAGE,
        webhook: WebhookChannel | None = None,
        email_alerts: bool = True,
    ) -> IssuedSecret | None:
        """Store a pending subscription and ask for a confirmation email (in `language`).

        Raises InvalidGeometry or ValueError (422) and RateLimited (429); the caller's answer
        is otherwise the same whether or not the address is known. With a webhook, its
        secret is returned (to be shown once).
        """
        if isinstance(self._publisher, NoPublisher):
            raise PublishUnavailable  # nothing stored that could never be confirmed
        validate_target(target, self._settings.max_polygon_vertices)
        if webhook is not None:
            self._check_webhook(webhook.url)
        if target.kind == "follow":
            exists = await self._db(lambda c: queries.one_request(c, target.service_request_id))
            if exists is None:
                raise InvalidGeometry("no request with this service_request_id is known")
        if target.kind == "department_digest":
            agency = target.agency
            if not await self._db(lambda c: department_queries.agency_known(c, agency)):
                raise ValueError("no request of this department (agency) is known")
        now = datetime.now(UTC)
        try:
            sub = Subscription(
                subscription_id=str(uuid.uuid4()),
                email=email.strip(),
                label=label,
                target=target,
                filters=filters,
                delivery=delivery,
                status=SubscriptionStatus.PENDING,
                created_at=now,
                language=language,
                webhook=webhook,
                email_alerts=email_alerts,
            )
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from exc
        await self._count_and_store(sub, client_ip)
        await self._publisher.subscription_changed(sub)
        await self._publisher.confirmation_requested(self._confirmation(sub, now))
        return self._issued(sub) if sub.webhook else None

    def _check_webhook(self, url: str) -> None:
        """The URL's text checks, as the notifier makes them (it also checks the address)."""
        checked = check_url(url, self._settings.webhook_policy())
        if isinstance(checked, Refused):
            raise ValueError(
                f"this webhook URL cannot be used ({checked.reason}): give an https:// URL "
                "of a public host on the standard port"
            )

    def _issued(self, sub: Subscription) -> IssuedSecret:
        assert sub.webhook is not None
        version = sub.webhook.secret_version
        secret = webhook_secret(self._secret(), sub.subscription_id, version)
        return IssuedSecret(sub.subscription_id, secret, version)

    async def _count_and_store(self, sub: Subscription, client_ip: str) -> None:
        # Known and unknown addresses take exactly this path: no lookup by address, the same
        # statements, the same two publishes (tests/unit/map_api/test_signup_same_work.py).
        # Keyed on the inbox, not the text: a+1@, A@ and a.b@gmail.com are one person's mail.
        address = normalized_mailbox(sub.email, self._mailbox_rules)
        refused = self._limiter.gate(client_ip, address)
        if refused is not None:
            raise RateLimited(refused.seconds, refused.scope)

        def work(conn: Connection) -> None:
            shared = self._limiter.count(conn, client_ip, address, time.time())
            if shared is not None:  # rolls back: refused attempts are not counted
                raise RateLimited(shared.seconds, shared.scope)
            store.insert(conn, sub)

        await self._db(work)
        self._limiter.accepted(client_ip, address)

    def _confirmation(self, sub: Subscription, now: datetime) -> ConfirmationRequested:
        token = sign_subscription_token(self._secret(), TokenPurpose.CONFIRM, sub.subscription_id)
        base = self._signing.public_base_url.rstrip("/")
        expires = now + timedelta(seconds=self._settings.confirm_token_max_age_s)
        # Allow-list: the email is described by system facts only, so the command carries no
        # user-chosen label (it would turn the city's mail server into a phishing relay).
        # A language other than English rides along, so the confirmed page opens in it.
        lang = "" if sub.language == DEFAULT_LANGUAGE else f"&lang={sub.language}"
        return ConfirmationRequested(
            subscription=sub.model_copy(update={"label": None}),
            confirm_url=f"{base}/api/subscriptions/confirm?token={token}{lang}",
            expires_at=expires.isoformat().replace("+00:00", "Z"),
        )

    async def confirm(self, token: str) -> None:
        """Activate the pending subscription a confirm token names (idempotent)."""
        sid = self._read(TokenPurpose.CONFIRM, token, self._settings.confirm_token_max_age_s)

        def work(conn: Connection) -> Subscription | None:
            sub = store.get(conn, sid)
            if sub is None:
                raise NoLongerActive("this alert was deleted")
            if sub.status in (SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.DISABLED):
                raise NoLongerActive(f"this alert is {sub.status.value}")  # never re-activate
            if sub.status is not SubscriptionStatus.PENDING:
                return None
            active = sub.model_copy(
                update={"status": SubscriptionStatus.ACTIVE, "confirmed_at": datetime.now(UTC)}
            )
            store.save(conn, active)
            return active

        changed = await self._db(work)
        if changed is not None:
            await self._publisher.subscription_changed(changed)

    def check_unsubscribe_link(self, token: str) -> str:
        """The subscription id of a valid, unexpired unsubscribe token; else InvalidToken."""
        return self._read(TokenPurpose.UNSUBSCRIBE, token, self._settings.manage_token_max_age_s)

    async def unsubscribe(self, token: str) -> str:
        """Stop the subscription an unsubscribe token names (idempotent); returns its id."""
        sid = self._read(TokenPurpose.UNSUBSCRIBE, token, self._settings.manage_token_max_age_s)
        await self._set_status(sid, SubscriptionStatus.UNSUBSCRIBED, missing_ok=True)
        return sid

    def manage_path(self, subscription_id: str) -> str:
        """The manage page of the alert's owner (the unsubscribe link proved they own it)."""
        token = sign_subscription_token(self._secret(), TokenPurpose.MANAGE, subscription_id)
        return f"/subscriptions/manage?token={token}"

    async def _set_status(
        self, sid: str, status: SubscriptionStatus, *, missing_ok: bool
    ) -> Subscription | None:
        def work(conn: Connection) -> Subscription | None:
            sub = store.get(conn, sid)
            if sub is None:
                if missing_ok:
                    return None
                raise InvalidToken("this subscription no longer exists")
            if sub.status is status:
                return None
            changed = sub.model_copy(update={"status": status})
            store.save(conn, changed)
            return changed

        changed = await self._db(work)
        if changed is not None:
            await self._publisher.subscription_changed(changed)
        return changed

    async def owned(self, token: str) -> tuple[str, list[Subscription]]:
        """The subscriptions of the address a manage token belongs to."""
        sid = self._read(TokenPurpose.MANAGE, token, self._settings.manage_token_max_age_s)
        subs = await self._db(lambda c: store.same_owner(c, sid))
        if not subs:
            raise InvalidToken("this subscription no longer exists")
        return sid, subs

    async def rotate_webhook(self, token: str, subscription_id: str) -> IssuedSecret:
        """A new secret for one of the owner's webhooks (the old one signs for a grace
        period more); it also turns a webhook the notifier turned off back on, to be
        verified afresh. Raises NotAllowed (403) for another's alert or one without."""
        _, subs = await self.owned(token)
        sub = next((x for x in subs if x.subscription_id == subscription_id), None)
        if sub is None:
            raise NotAllowed("this link cannot change that subscription")
        if sub.webhook is None:
            raise NotAllowed("this alert has no webhook")
        channel = sub.webhook.model_copy(
            update={
                "secret_version": sub.webhook.secret_version + 1,
                "rotated_at": datetime.now(UTC),
                "enabled": True,
            }
        )
        changed = sub.model_copy(update={"webhook": channel})
        await self._save_and_publish(changed)
        return self._issued(changed)

    async def change(
        self,
        token: str,
        subscription_id: str,
        action: str,
        delivery: Delivery | None,
        *,
        radius_m: float | None = None,
        filters: SubscriptionFilters | None = None,
        place: tuple[float, float] | None = None,
    ) -> list[Subscription]:
        """Apply a manage action to one of the owner's subscriptions; returns the new list.

        Every change is stored, then published as SubscriptionChanged (as sign-up does), so
        the matchers follow an edit, a pause and a resume. Raises NotAllowed (403) and
        ValueError (422, an edit the subscription rules refuse).
        """
        _, subs = await self.owned(token)
        sub = next((x for x in subs if x.subscription_id == subscription_id), None)
        if sub is None:
            raise NotAllowed("this link cannot change that subscription")
        if action == "delete":
            await self._db(lambda c: store.remove(c, subscription_id))
            await self._publisher.subscription_deleted(subscription_id)
            return [x for x in subs if x.subscription_id != subscription_id]
        if action == "unsubscribe":
            changed = await self._set_status(
                subscription_id, SubscriptionStatus.UNSUBSCRIBED, missing_ok=False
            )
        elif action == "resume":
            check_resumable(sub)
            changed = await self._set_status(
                subscription_id, SubscriptionStatus.ACTIVE, missing_ok=False
            )
        elif action == "set_delivery" and delivery is not None:
            if sub.target.kind == "department_digest" and delivery is not Delivery.DAILY:
                raise ValueError("a department digest is sent daily: its delivery stays 'daily'")
            changed = store.with_delivery(sub, delivery)
            await self._save_and_publish(changed)
        elif action == "edit":
            changed = edited(
                sub, radius_m, filters, self._settings.max_polygon_vertices, place=place
            )
            await self._save_and_publish(changed)
        else:
            raise NotAllowed("set_delivery needs a delivery value")
        replaced = changed or sub
        return [replaced if x.subscription_id == subscription_id else x for x in subs]

    async def _save_and_publish(self, changed: Subscription) -> None:
        await self._db(lambda c: store.save(c, changed))
        await self._publisher.subscription_changed(changed)

    async def bounced(self, message: SubscriptionBounced) -> bool:
        """Disable a subscription whose address keeps bouncing (or only its webhook, when
        the notifier turned that off); True if it changed."""
        if not message.disable:
            return False
        if message.channel == "webhook":
            return await self._webhook_off(message.subscription_id)
        changed = await self._set_status(
            message.subscription_id, SubscriptionStatus.DISABLED, missing_ok=True
        )
        return changed is not None

    async def _webhook_off(self, sid: str) -> bool:
        def work(conn: Connection) -> Subscription | None:
            sub = store.get(conn, sid)
            if sub is None or sub.webhook is None or not sub.webhook.enabled:
                return None
            changed = sub.model_copy(
                update={"webhook": sub.webhook.model_copy(update={"enabled": False})}
            )
            store.save(conn, changed)
            return changed

        changed = await self._db(work)
        if changed is not None:
            await self._publisher.subscription_changed(changed)
        return changed is not None

    async def republish(self) -> int:
        """Publish every stored subscription (the local broker forgets them on restart)."""
        subs = await self._db(lambda c: list(store.iterate_all(c)))
        for sub in subs:
            await self._publisher.subscription_changed(sub)
        log.info("republished %d subscriptions", len(subs))
        return len(subs)
