"""Links in emails: request page, manage page and one-click unsubscribe (signed tokens)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote, urlencode

from connect311_contracts.tokens import TokenPurpose
from connect311_notifier.link_tokens import token_signer

__all__ = ["LinkBuilder"]


@dataclass(frozen=True)
class LinkBuilder:
    """Builds the map API's public URLs; tokens are signed with the shared secret."""

    base_url: str
    secret: str
    lang: str = "en"
    """The email's language: the pages its links open are in it too (`lang=`), else the
    reader's browser decides (English links carry no parameter, as before)."""

    def _base(self) -> str:
        return self.base_url.rstrip("/")

    def in_language(self, lang: str) -> LinkBuilder:
        """The same links, opening the pages in `lang` (itself when already so: per email)."""
        return self if lang == self.lang else replace(self, lang=lang)

    def _query(self, params: dict[str, str]) -> str:
        return urlencode(params if self.lang == "en" else {**params, "lang": self.lang})

    def request_url(self, service_request_id: str) -> str:
        """The request's page on the map (the id is quoted: it contains ':')."""
        url = f"{self._base()}/requests/{quote(service_request_id, safe='')}"
        return url if self.lang == "en" else f"{url}?{self._query({})}"

    def map_url(self, service_request_id: str) -> str:
        """The live map centred on the request with its popup open (map.js reads `request`)."""
        return f"{self._base()}/?{self._query({'request': service_request_id})}"

    def manage_url(self, subscription_id: str) -> str:
        """The page where a subscriber manages their subscriptions."""
        # sign_subscription_token's token, made at less cost (see link_tokens).
        token = token_signer(self.secret, TokenPurpose.MANAGE).sign(subscription_id)
        return f"{self._base()}/subscriptions/manage?{self._query({'token': token})}"

    def unsubscribe_url(self, subscription_id: str) -> str:
        """RFC 8058 one-click unsubscribe: GET shows a page, POST unsubscribes."""
        token = token_signer(self.secret, TokenPurpose.UNSUBSCRIBE).sign(subscription_id)
        return f"{self._base()}/api/subscriptions/unsubscribe?{self._query({'token': token})}"
