"""Jinja2 templates (autoescaped HTML, plain text) to multipart/alternative UTF-8 email.

Messages are built with the email package's compat32 classes (MIMEMultipart/MIMEText):
measured several times cheaper per email than EmailMessage with the default policy, which
parses every header it is given. Bodies are UTF-8, sent as they are (7bit) when ASCII with
short lines, else quoted-printable, so they stay readable in raw form. An address that is
not ASCII needs SMTPUTF8, which only the modern policy writes, so those few messages take
the EmailMessage path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import Message
from email.utils import format_datetime, formataddr
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from connect311_contracts.notifications import (
    ConfirmationRequested,
    DepartmentDigestRequested,
    SubscriberMatched,
)
from connect311_contracts.subscriptions import Delivery, Subscription
from connect311_notifier.alert_skeleton import Skeleton, SkeletonCache, mark
from connect311_notifier.department_digest import department_digest_view
from connect311_notifier.department_digest import subject as department_subject
from connect311_notifier.describe import describe_alert
from connect311_notifier.email_words import (
    DEFAULT_FOOTER,
    Reason,
    alert_context,
    alert_subject,
    clean_header,
    digest_title,
    subscription_name,
)
from connect311_notifier.i18n import ENGLISH, N_, Language, install_gettext, language
from connect311_notifier.links import LinkBuilder
from connect311_notifier.mime import compat_message, smtputf8_message
from connect311_notifier.policy import CAP_REACHED, parse_expiry
from connect311_notifier.schedule import next_digest_at
from connect311_notifier.settings import Branding, NotifierSettings
from connect311_notifier.views import (
    digest_view,
    format_clock,
    format_distance,
    format_time,
    item_view,
    reason_text,
    with_article,
)
from connect311_notifier.wording import rule_text

# These four live in email_words now; still importable from here.
__all__ = ["DEFAULT_FOOTER", "Reason", "Renderer", "clean_header", "subscription_name"]


@dataclass(frozen=True)
class Renderer:
    """Renders each kind of email from its templates."""

    settings: NotifierSettings
    links: LinkBuilder
    tz: ZoneInfo
    env: Environment
    skeletons: SkeletonCache = field(default_factory=SkeletonCache, compare=False)
    """Alerts' shared parts, one per recent event and language (see `alert`)."""

    @classmethod
    def create(cls, settings: NotifierSettings, links: LinkBuilder) -> Renderer:
        """A renderer with the package's templates; HTML autoescaped, text not."""
        env = Environment(
            loader=PackageLoader("connect311_notifier", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            auto_reload=False,  # templates ship with the package: no stat per email
        )
        # `_()` in the templates reads each render's `lang` (the subscriber's language).
        return cls(settings, links, ZoneInfo(settings.display_timezone), install_gettext(env))

    def confirmation(
        self, command: ConfirmationRequested, message_id: str, now: datetime
    ) -> Message:
        """The double opt-in email with the map API's signed confirm link.

        Whoever signs up chooses the recipient, so nothing they typed is shown: the alert is
        described by system facts only (describe.py), and the confirm link is the only link.
        """
        lang = language(command.subscription.language)
        description = describe_alert(command.subscription, lang)
        context = {
            "description": description,
            "subscription_name": description,  # the shared layout's name: never the label
            "confirm_url": command.confirm_url,
            "expires": format_time(parse_expiry(command.expires_at), self.tz, lang),
        }
        return self._message(
            "confirmation",
            command.subscription,
            lang.gettext(N_("Please confirm your Connect311 alerts")),
            context,
            self.settings.branding(None),
            message_id,
            now,
            list_headers=False,
        )

    def alert(
        self,
        command: SubscriberMatched,
        follow: bool,
        message_id: str,
        now: datetime,
        also: Sequence[SubscriberMatched] = (),
        notice: str | None = None,
    ) -> Message:
        """An instant alert, or a follow update for a resident tracking a request.

        `also`: the same person's other subscriptions this event matched: one email lists
        every reason, each with its own stop link (List-Unsubscribe names `command`'s).
        `notice`: CAP_REACHED on the email that reaches the hourly cap.
        One reason and no notice (nearly every alert) is filled into the event's skeleton,
        rendered once for all its recipients (alert_skeleton); the rest render in full.
        """
        if also or notice is not None:
            return self._full_alert(command, follow, message_id, now, also, notice)
        lang = language(command.subscription.language)
        links = self.links.in_language(lang.code)
        event = command.request_event
        key = (event.event_id, lang.code, follow, command.distance_m is None)
        skeleton = self.skeletons.get(
            key, event, lambda: self._skeleton(command, follow, lang, links)
        )
        sub = command.subscription
        unsubscribe = links.unsubscribe_url(sub.subscription_id)
        text, html = skeleton.fill(
            {
                "distance": format_distance(command.distance_m, lang) or "",
                "place": sub.label or lang.gettext(N_("your place")),
                "name": subscription_name(sub, lang),
                "rule": rule_text(command, lang),
                "manage": links.manage_url(sub.subscription_id),
                "unsubscribe": unsubscribe,
            }
        )
        return self._assemble(
            sub, skeleton.subject, skeleton.branding, message_id, now, unsubscribe, text, html
        )

    def _skeleton(
        self, command: SubscriberMatched, follow: bool, lang: Language, links: LinkBuilder
    ) -> Skeleton:
        """The alert for `command`'s event, a marker for each per-recipient value."""
        item = replace(
            item_view(command, links, self.tz, lang=lang),
            distance=None if command.distance_m is None else mark("distance"),
            matched_rule=mark("rule"),
        )
        reason = Reason(mark("rule"), mark("name"), mark("unsubscribe"))
        subject = alert_subject(item, follow, lang)
        context = alert_context(item, follow, mark("place"), mark("name"), [reason], None)
        branding = self.settings.branding(command.request_event.request.agency_responsible)
        unsubscribes = [(mark("name"), mark("unsubscribe"))]
        text, html = self._bodies(
            "alert", lang, subject, context, branding, mark("manage"), unsubscribes
        )
        return Skeleton.of(command.request_event, subject, branding, text, html)

    def _full_alert(
        self,
        command: SubscriberMatched,
        follow: bool,
        message_id: str,
        now: datetime,
        also: Sequence[SubscriberMatched],
        notice: str | None,
    ) -> Message:
        lang = language(command.subscription.language)
        links = self.links.in_language(lang.code)
        item = item_view(command, links, self.tz, lang=lang)
        unique = {c.subscription.subscription_id: c for c in (command, *also)}
        reasons = [
            Reason(
                reason_text(c, lang),
                subscription_name(c.subscription, lang),
                links.unsubscribe_url(c.subscription.subscription_id),
            )
            for c in unique.values()
        ]
        subject = alert_subject(item, follow, lang)
        place = command.subscription.label or lang.gettext(N_("your place"))
        name = subscription_name(command.subscription, lang)
        cap = self._cap_notice(now, lang) if notice == CAP_REACHED else None
        context = alert_context(item, follow, place, name, reasons, cap)
        branding = self.settings.branding(command.request_event.request.agency_responsible)
        unsubscribes = [(r.subscription_name, r.unsubscribe_url) for r in reasons]
        return self._message(
            "alert",
            command.subscription,
            subject,
            context,
            branding,
            message_id,
            now,
            unsubscribes=unsubscribes,
        )

    def webhook_disabled(
        self, command: SubscriberMatched, why: str | None, message_id: str, now: datetime
    ) -> Message:
        """Tells a webhook's owner that the notifier turned it off (`why`: 'gone' for a 410,
        else repeated failures), and how to turn it back on. Names the host only: a chat
        app's webhook URL is itself a secret."""
        subscription = command.subscription
        lang = language(subscription.language)
        url = subscription.webhook.url if subscription.webhook else ""
        host = urlsplit(url).hostname or "?"
        context = {
            "host": host,
            "gone": why == "gone",
            "failures": self.settings.webhook_disable_after,
            "email_alerts": subscription.email_alerts,
            "subscription_name": subscription_name(subscription, lang),
        }
        subject = lang.gettext(N_("Your webhook to %(host)s is turned off")) % {"host": host}
        branding = self.settings.branding(None)
        return self._message(
            "webhook_disabled", subscription, subject, context, branding, message_id, now
        )

    def _cap_notice(self, now: datetime, lang: Language = ENGLISH) -> str:
        """Told once, on the email that reaches the cap: what happens to the next alerts."""
        cap = self.settings.instant_per_hour
        at = format_clock(next_digest_at(Delivery.HOURLY, now, self.tz, 0), self.tz, lang)
        notice = N_(
            "You are getting many alerts (%(cap)s within an hour), so we are grouping any more "
            "that arrive in the next hour into a summary instead of one email each: "
            "next summary at %(at)s (city time)."
        )
        return lang.gettext(notice) % {"cap": cap, "at": at}

    def digest(
        self,
        commands: list[SubscriberMatched],
        period: str,
        message_id: str,
        now: datetime,
        grouped: bool = False,
    ) -> Message:
        """One email folding many events, grouped new / updated / closed.

        `grouped`: instant alerts folded because the hourly cap was reached, not a summary
        the person chose; the email says which, so its words are true.
        """
        subscription = max(commands, key=lambda c: c.occurred_at).subscription
        lang = language(subscription.language)
        links = self.links.in_language(lang.code)
        view = digest_view(commands, links, self.tz, self.settings.max_digest_items, lang)
        agencies = {c.request_event.request.agency_responsible for c in commands}
        branding = self.settings.branding(agencies.pop() if len(agencies) == 1 else None)
        name = subscription_name(subscription, lang)
        title = digest_title(period, grouped, lang)
        context = {
            "view": view,
            "groups": [
                (lang.pgettext("digest group", "New"), view.new),
                (lang.pgettext("digest group", "Updated"), view.updated),
                (lang.pgettext("digest group", "Closed"), view.closed),
            ],
            "period": period,
            "title": title,
            "a_period": with_article(period),
            "grouped": grouped,
            "cap": self.settings.instant_per_hour,
            "subscription_name": name,
        }
        subject = lang.ngettext(
            "%(title)s: %(count)s request for %(name)s",
            "%(title)s: %(count)s requests for %(name)s",
            view.total,
        ) % {"title": title, "count": view.total, "name": name}
        return self._message("digest", subscription, subject, context, branding, message_id, now)

    def department_digest(
        self, command: DepartmentDigestRequested, message_id: str, now: datetime
    ) -> Message:
        """A department's daily digest: overdue requests, then its oldest open ones."""
        subscription = command.subscription
        lang = language(subscription.language)
        links = self.links.in_language(lang.code)
        view = department_digest_view(command, links, self.tz, lang)
        context = {"view": view, "subscription_name": subscription_name(subscription, lang)}
        branding = self.settings.branding(command.agency)
        subject = department_subject(view, lang)
        return self._message(
            "department_digest", subscription, subject, context, branding, message_id, now
        )

    def _message(
        self,
        template: str,
        subscription: Subscription,
        subject: str,
        context: dict[str, Any],
        branding: Branding,
        message_id: str,
        now: datetime,
        list_headers: bool = True,
        unsubscribes: list[tuple[str, str]] | None = None,
    ) -> Message:
        sub_id = subscription.subscription_id
        lang = language(subscription.language)
        links = self.links.in_language(lang.code)
        unsubscribe = links.unsubscribe_url(sub_id) if list_headers else None
        if unsubscribes is None:
            name = context["subscription_name"]
            unsubscribes = [(name, unsubscribe)] if unsubscribe else []
        manage = links.manage_url(sub_id) if list_headers else None
        listed = unsubscribes if list_headers else []
        text, html = self._bodies(template, lang, subject, context, branding, manage, listed)
        return self._assemble(
            subscription, subject, branding, message_id, now, unsubscribe, text, html
        )

    def _bodies(
        self,
        template: str,
        lang: Language,
        subject: str,
        context: dict[str, Any],
        branding: Branding,
        manage_url: str | None,
        unsubscribes: list[tuple[str, str]],
    ) -> tuple[str, str]:
        """The plain text and HTML of an email from its templates."""
        full = {
            **context,
            "lang": lang.code,
            "subject": subject,
            "footer": lang.gettext(branding.footer) if branding.footer else "",
            "manage_url": manage_url,
            "unsubscribes": unsubscribes,
        }
        text = self.env.get_template(f"{template}.txt").render(full)
        html = self.env.get_template(f"{template}.html").render(full)
        return text, html

    def _assemble(
        self,
        subscription: Subscription,
        subject: str,
        branding: Branding,
        message_id: str,
        now: datetime,
        unsubscribe: str | None,
        text: str,
        html: str,
    ) -> Message:
        """The message: headers, and the text and HTML as multipart/alternative."""
        headers = {
            "From": formataddr((clean_header(branding.from_name), self.settings.from_address)),
            "To": subscription.email,
            "Subject": clean_header(subject),
            "Date": format_datetime(now),
            "Message-ID": message_id,
            "Auto-Submitted": "auto-generated",
            "Content-Language": language(subscription.language).code,
        }
        if unsubscribe:
            headers["List-Unsubscribe"] = f"<{unsubscribe}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if subscription.email.isascii() and self.settings.from_address.isascii():
            return compat_message(headers, text, html)
        return smtputf8_message(headers, text, html)
