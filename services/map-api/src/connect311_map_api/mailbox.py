"""The mailbox an address delivers to, as a key for sign-up limits (pure, no I/O).

`A@x`, `a+1@x`, `a+2@x` and, at providers that ignore dots, `a.b@gmail.com` all land in one
inbox, so a per-address limit keyed on the raw text lets one person be mail-bombed through
variants. Folding is deliberately generous: two real people sharing a key only share a
limit, which is harmless; one inbox under two keys is what lets the limit be bypassed. The
folded form is used for limits only; mail still goes to the address as it was typed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["MailboxRules", "normalized_mailbox"]

DEFAULT_TAG_SEPARATORS = "+"
DEFAULT_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
DEFAULT_DOMAIN_ALIASES: Mapping[str, str] = {"googlemail.com": "gmail.com"}


@dataclass(frozen=True)
class MailboxRules:
    """How to fold addresses: tag separators, dot-blind domains and domain aliases."""

    tag_separators: str = DEFAULT_TAG_SEPARATORS
    dotless_domains: frozenset[str] = DEFAULT_DOTLESS_DOMAINS
    domain_aliases: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DOMAIN_ALIASES))

    @classmethod
    def from_lists(
        cls, tag_separators: str, dotless_domains: Iterable[str], aliases: Iterable[str]
    ) -> MailboxRules:
        """Rules from settings text: separator characters, domains, `alias=domain` pairs."""
        pairs = (item.split("=", 1) for item in aliases if "=" in item)
        return cls(
            tag_separators=tag_separators,
            dotless_domains=frozenset(_domain(d) for d in dotless_domains if d.strip()),
            domain_aliases={_domain(a): _domain(d) for a, d in pairs if a.strip() and d.strip()},
        )

    def domain_of(self, address: str) -> str:
        """The folded domain of an address ('' when it has none)."""
        _, at, domain = address.strip().rpartition("@")
        if not at:
            return ""
        folded = _domain(domain)
        return self.domain_aliases.get(folded, folded)


def _domain(text: str) -> str:
    return text.strip().casefold().rstrip(".")


def normalized_mailbox(address: str, rules: MailboxRules | None = None) -> str:
    """The key of the inbox `address` delivers to: case-folded, tag cut, dots dropped.

    Linear in the address's length (no regular expressions); any string is accepted.
    """
    rules = rules or MailboxRules()
    local, at, _ = address.strip().rpartition("@")
    if not at:
        return address.strip().casefold()
    domain = rules.domain_of(address)
    local = local.casefold()
    cut = min((i for i in (local.find(s) for s in rules.tag_separators) if i >= 0), default=-1)
    if cut >= 0:
        local = local[:cut]
    if domain in rules.dotless_domains or any(
        alias in rules.dotless_domains for alias, to in rules.domain_aliases.items() if to == domain
    ):
        local = local.replace(".", "")
    return f"{local}@{domain}"
