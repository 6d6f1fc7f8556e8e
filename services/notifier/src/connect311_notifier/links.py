"""Links in emails: request page, manage page and one-click unsubscribe (signed tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from connect311_contracts.tokens import TokenPurpose, sign_subscription_token


@dataclass(frozen=True)
class LinkBuilder:
    """Builds the map API's public URLs; tokens are signed with the shared secret."""

    base_url: str
    secret: str

    def _base(self) -> str:
        return self.base_url.rstrip("/")

    def request_url(self, service_request_id: str) -> str:
        """The request's page on the map (the id is quoted: it contains ':')."""
        return f"{self._base()}/requests/{quote(service_request_id, safe='')}"

    def map_url(self, service_request_id: str) -> str:
        """The live map centred on the request with its popup open (map.js reads `request`)."""
        return f"{self._base()}/?{urlencode({'request': service_request_id})}"

    def manage_url(self, subscription_id: str) -> str:
        """The page where a subscriber manages their subscriptions."""
        token = sign_subscription_token(self.secret, TokenPurpose.MANAGE, subscription_id)
        return f"{self._base()}/subscriptions/manage?{urlencode({'token': token})}"

    def unsubscribe_url(self, subscription_id: str) -> str:
        """RFC 8058 one-click unsubscribe: GET shows a page, POST unsubscribes."""
        token = sign_subscription_token(self.secret, TokenPurpose.UNSUBSCRIBE, subscription_id)
        return f"{self._base()}/api/subscriptions/unsubscribe?{urlencode({'token': token})}"
