"""Pages in English and Spanish (issue 16): the catalog covers every string the templates,
scripts and page code use; the language comes from the switch, the cookie, Accept-Language;
a sign-up keeps the page's language for its emails."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

import connect311_map_api
from connect311_contracts.datasets import KNOWN_DATASETS
from connect311_map_api.web import dataset_words, i18n
from connect311_map_api.web.language import choose_language, parse_accept_language
from tests.unit.map_api.factories import RecordingPublisher

PACKAGE = Path(connect311_map_api.__file__).parent
CATALOG = PACKAGE / "web" / "locale" / "es" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
KEYWORDS |= {"N_": None, "NP_": ((1, "c"), 2), "_n": (1, 2)}
PLACEHOLDER = re.compile(r"%\(\w+\)s")
TAG = re.compile(r"</?[a-z]+")
AVAILABLE = ("en", "es")


def extracted() -> dict[tuple[str | None, str], int]:
    """Every message the sources use, found the way `pybabel extract -F babel.cfg` finds them
    (templates with syntax errors fail instead of being skipped)."""
    with (PACKAGE / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[tuple[str | None, str], int] = {}
    for _file, _line, message, _comments, context in extract_from_dir(
        str(PACKAGE), method_map, options_map, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found[(context, msgid)] = found.get((context, msgid), 0) + 1
    return found


def _singular(msgid: str | tuple[str, ...]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def test_every_string_the_pages_use_has_a_checked_spanish_translation() -> None:
    with CATALOG.open("rb") as po:
        catalog = read_po(po, locale="es")
    used = extracted()
    assert len(used) > 300  # the extraction itself works (templates, scripts, page code)
    problems = []
    for context, msgid in used:
        message = catalog.get(msgid, context=context)
        if message is None:
            problems.append(f"missing: {msgid!r}")
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(forms):
            problems.append(f"fuzzy or empty: {msgid!r}")
        for form in forms:
            if placeholders(form) != placeholders(ids[-1]) and placeholders(form) != placeholders(
                ids[0]
            ):
                problems.append(f"placeholders differ: {msgid!r} -> {form!r}")
            if TAG.findall(form) != TAG.findall(ids[0]):
                problems.append(f"markup differs: {msgid!r} -> {form!r}")
    ids_used = {(context, msgid) for context, msgid in used}
    stale = [m.id for m in catalog if m.id and (m.context, _singular(m.id)) not in ids_used]
    assert not problems, "\n".join(problems)
    assert not stale, f"in the catalog but used nowhere (run pybabel update): {stale}"


def test_babel_finds_every_string_the_scripts_look_up() -> None:
    # A plain scan of the scripts' _("...") and _n("...") calls: Babel's JavaScript lexer
    # has skipped strings before (a regex read as JSX), and a skipped string stays English.
    plain = set()
    for script in (PACKAGE / "web" / "static" / "js").glob("*.js"):
        text = script.read_text()
        plain |= set(re.findall(r'\b_n?\(\s*"((?:[^"\\\n]|\\.)*)"', text))
    found = {msgid for _context, msgid in extracted()}
    assert plain - found == set()


def test_the_dataset_words_marked_for_the_catalog_are_the_contracts_words() -> None:
    fields = {
        "label": "label",
        "item": "item",
        "items": "items",
        "kindLabel": "kind_label",
        "idLabel": "id_label",
        "descriptionLabel": "description_label",
    }
    contract = {
        (f"dataset {page_field}", getattr(words, field))
        for words in KNOWN_DATASETS.values()
        for page_field, field in fields.items()
    }
    assert set(dataset_words.MARKED) == contract
    spanish = dataset_words.datasets_config("es")["crime"]
    assert (spanish["label"], spanish["item"], spanish["hasStatus"]) == (
        "Delitos",
        "incidente delictivo",
        False,
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("es-MX,es;q=0.9,en;q=0.8", ["es-MX", "es", "en"]),
        ("en;q=0.5, es;q=0.9", ["es", "en"]),
        ("fr, *;q=0.1", ["fr"]),
        ("es;q=0, en", ["en"]),
        ("es;q=abc, en;q=2", []),
        ("<script>, es", ["es"]),
        ("", []),
        (None, []),
    ],
)
def test_accept_language_is_read_best_first(header: str | None, expected: list[str]) -> None:
    assert parse_accept_language(header) == expected


def test_an_endless_accept_language_is_read_only_so_far() -> None:
    assert parse_accept_language("fr," * 100_000 + "es") == ["fr"] * 20


@pytest.mark.parametrize(
    ("query", "cookie", "header", "expected"),
    [
        ("es", None, "en", "es"),  # the switch wins
        (None, "es", "en-US", "es"),  # then the remembered choice
        ("en", "es", "es", "en"),
        ("xx", "es", None, "es"),  # an unknown choice is ignored, not trusted
        (None, None, "es-419,en;q=0.5", "es"),  # then the browser
        (None, None, "fr-CA,fr", "en"),  # else English
        (None, "ES", None, "es"),
        (None, None, None, "en"),
    ],
)
def test_the_page_language_is_the_switch_then_the_cookie_then_the_browser(
    query: str | None, cookie: str | None, header: str | None, expected: str
) -> None:
    assert choose_language(query, cookie, header, AVAILABLE) == expected


def test_spanish_is_a_catalog_and_english_needs_none() -> None:
    assert i18n.available_languages() == AVAILABLE
    assert i18n.translations("es").gettext("Alert me") == "Avisarme"
    assert i18n.translations("en").gettext("Alert me") == "Alert me"
    assert i18n.format_locale("es") == "es_US"  # US conventions: 1,234.5 and 3:04 p.m.


def test_the_switch_sets_the_page_language_and_remembers_it(client: TestClient) -> None:
    page = client.get("/?lang=es")
    assert page.status_code == 200
    assert '<html lang="es">' in page.text and page.headers["content-language"] == "es"
    assert "Avisarme sobre un lugar" in page.text and "Alert me about a place" not in page.text
    assert 'hreflang="en" lang="en">English</a>' in page.text
    assert "c311_lang=es" in page.headers["set-cookie"]
    # The scripts' strings ride along in the page, only those its scripts use.
    data = re.search(r'id="c311-i18n">(.*?)</script>', page.text)
    assert data is not None
    scripts = json.loads(data.group(1))
    assert scripts["lang"] == "es" and scripts["locale"] == "es-US"
    assert scripts["messages"]["Loading requests…"] == "Cargando solicitudes…"
    assert "Could not load statistics: %(reason)s" not in scripts["messages"]  # stats.js's
    again = client.get("/track")  # the cookie is sent back
    assert '<html lang="es">' in again.text and "Seguir mi solicitud" in again.text
    back = client.get("/stats?lang=en")
    assert '<html lang="en">' in back.text and 'hreflang="es" lang="es">Español</a>' in back.text


def test_the_browser_language_is_used_without_a_choice(client: TestClient) -> None:
    page = client.get("/accessibility", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert '<html lang="es">' in page.text and "Declaración de accesibilidad" in page.text
    assert "set-cookie" not in page.headers  # only a choice made with the switch is kept
    english = client.get("/accessibility", headers={"Accept-Language": "de-DE"})
    assert '<html lang="en">' in english.text


def test_a_sign_up_keeps_the_page_language_for_its_emails(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    target = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 300}
    answer = client.post(
        "/api/subscriptions",
        json={"email": "vecina@example.org", "target": target, "language": "es"},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["message"].startswith("Revise su bandeja de entrada")
    command = publisher.confirmations[-1]
    assert command.subscription.language == "es"
    assert command.confirm_url.endswith("&lang=es")
    # Stored with the subscription: confirming it publishes it again, still in Spanish.
    confirmed = client.get(
        command.confirm_url.removeprefix("http://testserver"), follow_redirects=False
    )
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "/subscriptions/confirmed?lang=es"
    assert publisher.changed[-1].language == "es"
    # No language sent: the browser's decides; one the site lacks falls back the same way.
    client.post(
        "/api/subscriptions",
        json={"email": "a@example.org", "target": target, "language": "fr"},
        headers={"Accept-Language": "es"},
    )
    assert publisher.confirmations[-1].subscription.language == "es"
    client.post("/api/subscriptions", json={"email": "b@example.org", "target": target})
    assert publisher.confirmations[-1].subscription.language == "en"
    bad = client.post(
        "/api/subscriptions",
        json={"email": "c@example.org", "target": target, "language": "<script>"},
    )
    assert bad.status_code == 422


def test_the_unsubscribe_page_reads_in_spanish(client: TestClient) -> None:
    page = client.get(
        "/api/subscriptions/unsubscribe?token=not-a-real-token", headers={"Accept-Language": "es"}
    )
    assert page.status_code == 400
    assert '<html lang="es">' in page.text and "Este enlace no es válido." in page.text
