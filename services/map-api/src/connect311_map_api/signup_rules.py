"""What a subscription change may do, without I/O: the refusals the sign-up service raises, the
secret it shows once, and the checks on resuming and editing an alert (`signup` applies them)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from connect311_contracts.subscriptions import Subscription, SubscriptionFilters, SubscriptionStatus
from connect311_contracts.tokens import InvalidToken
from connect311_map_api.core.geo import validate_target


class RateLimited(Exception):
    """Too many sign-ups in one scope ('ip', 'addr', 'domain', 'all'); retry after `seconds`."""

    def __init__(self, seconds: int, scope: str = "ip") -> None:
        super().__init__(f"too many sign-ups ({scope}); retry in {seconds} s")
        self.seconds = seconds
        self.scope = scope


class NotAllowed(Exception):
    """The token is valid but does not allow this change (e.g. another address's id)."""


class NoLongerActive(InvalidToken):
    """A confirm link of an alert that was since unsubscribed, disabled or deleted."""


@dataclass(frozen=True)
class IssuedSecret:
    """A webhook's signing secret, for the one answer that shows it."""

    subscription_id: str
    secret: str
    secret_version: int


def check_resumable(sub: Subscription) -> None:
    """Only a paused (unsubscribed) alert resumes: the others need their own path back."""
    if sub.status is SubscriptionStatus.PENDING:
        raise NotAllowed("this alert is not confirmed yet: use the link in the confirmation email")
    if sub.status is SubscriptionStatus.DISABLED:
        # Re-activating would mail an address that bounces; a new sign-up proves it works.
        raise NotAllowed(
            "emails to this address could not be delivered, so it stays stopped: "
            "sign up again from the map with an address that works"
        )


def edited(
    sub: Subscription,
    radius_m: float | None,
    filters: SubscriptionFilters | None,
    max_vertices: int,
    place: tuple[float, float] | None = None,
) -> Subscription:
    """The subscription with a new place, radius and/or filters, checked as a sign-up is."""
    if radius_m is None and filters is None and place is None:
        raise ValueError("an edit needs a place (lat and long), radius_m or filters")
    update: dict[str, object] = {}
    if radius_m is not None or place is not None:
        if sub.target.kind != "circle":
            raise ValueError("only an alert around a point has a place and radius to change")
        target = sub.target.model_dump()
        if radius_m is not None:
            target["radius_m"] = float(radius_m)
        if place is not None:
            target["lat"], target["long"] = place
        update["target"] = target
    if filters is not None:
        update["filters"] = filters.model_dump()
    try:
        # Validated from plain data: model_copy (or a model instance) would skip the rules
        # (a city-wide alert keeps needing a filter; the radius stays within its bounds).
        edited = Subscription.model_validate({**sub.model_dump(), **update})
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from exc
    validate_target(edited.target, max_vertices)
    return edited
