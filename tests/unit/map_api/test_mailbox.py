"""Address variants that reach one inbox fold to one limit key (pure function, properties)."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from connect311_map_api.mailbox import MailboxRules, normalized_mailbox
from connect311_map_api.settings import MapApiSettings

LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=20)
TAG = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.+-", max_size=12)
DOMAIN = st.sampled_from(["example.org", "city.gov", "gmail.com", "googlemail.com", "mail.co"])


@given(st.text(max_size=80))
def test_folding_is_idempotent_and_never_fails(address: str) -> None:
    once = normalized_mailbox(address)
    assert normalized_mailbox(once) == once


@given(LOCAL, TAG, DOMAIN)
def test_case_and_plus_tags_fold_to_the_plain_mailbox(local: str, tag: str, domain: str) -> None:
    plain = normalized_mailbox(f"{local}@{domain}")
    assert normalized_mailbox(f"{local.upper()}@{domain.upper()}") == plain
    assert normalized_mailbox(f"{local}+{tag}@{domain}") == plain
    assert normalized_mailbox(f"  {local}+{tag}@{domain}.  ") == plain


@given(LOCAL, st.lists(st.integers(0, 20), max_size=5), st.sampled_from(["gmail", "googlemail"]))
def test_dots_do_not_count_at_gmail_and_googlemail_is_gmail(
    local: str, cuts: list[int], provider: str
) -> None:
    dotted = local
    for cut in sorted(set(cuts), reverse=True):
        dotted = dotted[:cut] + "." + dotted[cut:]
    assert normalized_mailbox(f"{dotted}@{provider}.com") == normalized_mailbox(
        f"{local}@gmail.com"
    )


@given(LOCAL, LOCAL, st.sampled_from(["example.org", "city.gov"]))
def test_other_providers_keep_dots_and_distinct_mailboxes_stay_distinct(
    a: str, b: str, domain: str
) -> None:
    # Dots are significant outside the configured providers: a.b@x and ab@x are two inboxes.
    assert normalized_mailbox(f"{a}.{b}@{domain}") != normalized_mailbox(f"{a}{b}@{domain}")
    if a != b:
        assert normalized_mailbox(f"{a}@{domain}") != normalized_mailbox(f"{b}@{domain}")


def test_rules_come_from_settings() -> None:
    rules = MapApiSettings(
        mailbox_tag_separators="+-",
        mailbox_dotless_domains="Corp.Example, ",
        mailbox_domain_aliases="old.example=corp.example,broken",
    ).mailbox_rules()
    assert normalized_mailbox("Jo.Ann-news@OLD.example", rules) == "joann@corp.example"
    assert normalized_mailbox("jo+x@gmail.com", rules) == "jo@gmail.com"
    assert normalized_mailbox("j.o@gmail.com", rules) == "j.o@gmail.com"  # not listed any more
    none = MailboxRules.from_lists("", [], [])
    assert normalized_mailbox("A+b@Example.org", none) == "a+b@example.org"


def test_folding_is_linear_in_length() -> None:
    hostile = "a" * 200_000 + "+" * 200_000 + "@" + "." * 200_000 + "gmail.com"
    started = time.perf_counter()
    normalized_mailbox(hostile)
    assert time.perf_counter() - started < 0.5
