"""Emails in the language the subscriber signed up in (issue 16): subject, text and HTML in
Spanish, dates and distances written by Babel, links that open the pages in Spanish, the
city's own words untouched; the catalog covers every string the emails use."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

import connect311_notifier
from connect311_contracts.datasets import KNOWN_DATASETS
from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_contracts.subscriptions import Subscription, SubscriptionFilters
from connect311_notifier import wording
from connect311_notifier.i18n import language
from connect311_notifier.links import LinkBuilder
from connect311_notifier.render import DEFAULT_FOOTER, Renderer
from connect311_notifier.settings import NotifierSettings
from tests.unit.notifier.factories import confirmation, event, matched, request, subscription
from tests.unit.notifier.test_render import parts, reparse

PACKAGE = Path(connect311_notifier.__file__).parent
NOW = datetime(2024, 5, 6, 18, 0, tzinfo=UTC)
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
KEYWORDS |= {"N_": None, "NP_": ((1, "c"), 2)}


@pytest.fixture
def renderer() -> Renderer:
    settings = NotifierSettings(from_address="alerts@example.city")
    return Renderer.create(settings, LinkBuilder("https://alerts.example.city", "secret"))


def spanish(sub: Subscription) -> Subscription:
    return sub.model_copy(update={"language": "es"})


def test_a_spanish_confirmation(renderer: Renderer) -> None:
    sub = spanish(subscription(label=None)).model_copy(
        update={"filters": SubscriptionFilters(service_codes=("POT",), datasets=("crime",))}
    )
    command = confirmation(sub, expires_in=timedelta(hours=48))
    msg = reparse(renderer.confirmation(command, "<es1@example.city>", NOW))
    text, html = parts(msg)
    assert msg["Subject"] == "Confirme sus alertas de Connect311"
    assert msg["Content-Language"] == "es" and '<html lang="es">' in html
    assert "incidentes delictivos a menos de 500 m de un punto del mapa (1 categoría)" in text
    assert "<strong>incidentes delictivos a menos de 500 m" in html
    assert "Confirmar mi suscripción" in html and command.confirm_url in text
    # The expiry as Spanish writes it (Babel, es_US), in the city's zone.
    assert re.search(r"hasta el \w+ \d+ de \w+ de 20\d\d, \d+:\d\d [ap]\.\s?m\. E[SD]T", text)
    assert "Please confirm" not in text and "Confirm my" not in html
    assert "Recibe este correo porque se suscribió" in text  # the default footer too


def test_a_spanish_alert_words_the_facts_again_and_keeps_the_citys_words(
    renderer: Renderer,
) -> None:
    req = request(status=RequestStatus.CLOSED, description="Bache en el carril").model_copy(
        update={"closed_reason": ClosedReason.DUPLICATE, "raw_status": "Dup. of 4411"}
    )
    command = matched(spanish(subscription(label="Casa")), event(req, "closed"), distance_m=312)
    msg = reparse(renderer.alert(command, False, "<es2@example.city>", NOW))
    text, html = parts(msg)
    assert msg["Subject"] == "Cerrada: Pothole en 100 Central Ave"
    for body in (text, html):
        assert (
            "Cerrada — duplicada de otra solicitud (estado según la ciudad: Dup. of 4411)" in body
        )
        # The matcher writes English; the email says the same facts in Spanish.
        assert "a menos de 500 m de Casa (a 312 m)" in body and "within" not in body
        assert "lunes 6 de mayo de 2024" in body  # Babel's Spanish date
        assert "Pothole" in body and "Public Works" in body  # the city's words, as written
    assert "Estado:" in text and "Departamento:" in text and "Verla en el mapa:" in text
    # Every link opens the pages in Spanish; the one-click unsubscribe keeps working.
    links = re.findall(r"https://alerts\.example\.city/\S+", text)
    assert links and all(parse_qs(urlsplit(u).query)["lang"] == ["es"] for u in links)
    unsubscribe = msg["List-Unsubscribe"].strip("<>")
    assert parse_qs(urlsplit(unsubscribe).query)["lang"] == ["es"]


def test_a_spanish_follow_update_and_digest(renderer: Renderer) -> None:
    sub = spanish(subscription(follow="stpete:1", label=None))
    req = request(status=RequestStatus.IN_PROGRESS)
    update = matched(sub, event(req, "updated", previous=RequestStatus.OPEN), distance_m=None)
    msg = reparse(renderer.alert(update, True, "<es3@example.city>", NOW))
    text, _ = parts(msg)
    assert msg["Subject"] == "Novedad: Pothole ahora está En curso"
    assert "Novedad de la solicitud que usted sigue" in text
    assert "Estado: Abierta -> En curso" in text
    digest = reparse(renderer.digest([update], "daily", "<es4@example.city>", NOW))
    text, html = parts(digest)
    assert digest["Subject"] == "Su resumen 311 diario: 1 solicitud para solicitud stpete:1"
    assert "== Actualizadas (1) ==" in text
    assert "eligió un resumen diario para &ldquo;solicitud" in html


def test_a_language_without_a_catalog_reads_english(renderer: Renderer) -> None:
    sub = subscription().model_copy(update={"language": "fr"})
    msg = reparse(renderer.alert(matched(sub), False, "<fr@example.city>", NOW))
    text, _ = parts(msg)
    assert msg["Subject"].startswith("New request: Pothole")
    assert NotifierSettings().footer == DEFAULT_FOOTER  # the footer the catalog translates
    assert "Why you got this: within 500 m of Home" in text and "lang=" not in text


def test_dates_and_distances_follow_the_language() -> None:
    es, en = language("es"), language("en")
    assert wording.local_distance(1234.0, es) == wording.local_distance(1234.0, en) == "1.2 km"
    ny = ZoneInfo("America/New_York")
    assert wording.local_time(NOW, ny, en) == "Mon 06 May 2024, 14:00 EDT"  # as before Babel
    assert wording.local_time(NOW, ny, es) == "lunes 6 de mayo de 2024, 2:00 p.m. EDT"
    assert wording.local_clock(NOW, ny, es) == "2:00 p.m. EDT"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_remembered_distances_and_times_are_what_babel_writes(lang: str) -> None:
    t = language(lang)
    # Halves (rounded to even, as Babel rounds the value's repr), the 1 km edge, big ones.
    metres = [0.0, 0.5, 1.5, 2.5, 499.5, 999.4, 999.5, 999.7, 1000.0, 1049.999, 1050.0]
    metres += [1150.0, 1250.0, 1350.0, 2675.0, 12345.678, 1_234_567.0, 9.87e9, float("inf")]
    draw = random.Random(7)
    metres += [i * 37.3 for i in range(400)] + [draw.uniform(0, 50_000) for _ in range(600)]
    for m in metres * 2:  # the second time from the cache
        expected = (
            f"{format_decimal(round(m), locale=t.locale)} m"
            if m < 1000
            else f"{format_decimal(m / 1000, format='0.0', locale=t.locale)} km"
        )
        assert wording.local_distance(m, t) == expected, m
    ny, utc = ZoneInfo("America/New_York"), ZoneInfo("UTC")
    for moment in (NOW, NOW.astimezone(ny), NOW.replace(tzinfo=None), NOW.replace(month=1)):
        for tz in (ny, utc):
            for _ in range(2):
                expected = format_datetime(
                    moment, t.gettext(wording.TIME_PATTERN), tzinfo=tz, locale=t.locale
                )
                assert wording.local_time(moment, tz, t) == expected


def test_every_string_the_emails_use_has_a_checked_spanish_translation() -> None:
    with (PACKAGE / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    used = set()
    for _f, _l, message, _c, context in extract_from_dir(
        str(PACKAGE), method_map, options_map, keywords=KEYWORDS
    ):
        used.add((context, message[0] if isinstance(message, tuple) else message))
    assert len(used) > 100
    with (PACKAGE / "locale" / "es" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="es")
    problems = []
    for context, msgid in sorted(used, key=str):
        message = catalog.get(msgid, context=context)
        forms = () if message is None else message.string
        forms = forms if isinstance(forms, tuple) else (forms,)
        if message is None or message.fuzzy or not all(forms):
            problems.append(f"missing, fuzzy or empty: {msgid!r}")
            continue
        expected = sorted(re.findall(r"%\(\w+\)s", msgid))
        for form in forms:
            if sorted(re.findall(r"%\(\w+\)s", form)) != expected:
                problems.append(f"placeholders differ: {msgid!r} -> {form!r}")
    assert not problems, "\n".join(problems)
    # The contract's dataset words are all marked for the catalog.
    fields = ("label", "item", "items", "kind_label", "id_label", "description_label")
    marked = {(f"dataset {f}", getattr(w, f)) for w in KNOWN_DATASETS.values() for f in fields}
    assert marked <= used
