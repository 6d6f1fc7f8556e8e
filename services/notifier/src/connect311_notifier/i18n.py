"""The emails in the language each subscriber signed up in (`Subscription.language`).

Catalogs are `locale/<lang>/LC_MESSAGES/messages.po` in this package (English is the source
text and needs none), compiled in memory when a language is first used and kept; adding a
language is adding its catalog (README, "Translations"). A language without a catalog, or a
fuzzy (unchecked) entry, reads English. The map API has its own catalog for its pages: the
services share no code but the contracts.

Templates call `{{ _("...") }}` (Jinja2's i18n extension, new-style); the translation is
chosen per render from the template's `lang`, never from shared state.
"""

from __future__ import annotations

import functools
import gettext
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from connect311_contracts.subscriptions import DEFAULT_LANGUAGE

__all__ = [
    "ENGLISH",
    "NP_",
    "N_",
    "Language",
    "email_language",
    "format_locale",
    "install_gettext",
    "language",
    "translations",
]

LOCALE_DIR = Path(__file__).parent / "locale"


def N_(message: str) -> str:  # the gettext convention's name for "translate later"
    """Mark a string for the catalog where it is defined; it is translated where shown."""
    return message


def NP_(context: str, message: str) -> str:  # "translate later", with a context (NP_:1c,2)
    """Mark a word that needs a context for the catalog; returns the word."""
    return message


def _po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


def email_language(lang: str | None) -> str:
    """The language an email is written in: the subscriber's when it has a catalog."""
    code = (lang or DEFAULT_LANGUAGE).split("-")[0]
    return code if code == DEFAULT_LANGUAGE or _po_path(code).is_file() else DEFAULT_LANGUAGE


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of a language (English and unknown ones: the source text)."""
    path = _po_path(lang)
    if lang == DEFAULT_LANGUAGE or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=lang)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled)


@functools.cache
def format_locale(lang: str) -> str:
    """The Babel locale for dates and numbers: the language as written in the US ('es_US')."""
    try:
        return str(Locale.parse(f"{lang}_US"))
    except (UnknownLocaleError, ValueError):
        return lang


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(str(context.get("lang") or DEFAULT_LANGUAGE)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(str(context.get("lang") or DEFAULT_LANGUAGE)).ngettext(singular, plural, n)


def install_gettext(env: Environment) -> Environment:
    """Give an environment `_()` and `ngettext()` in the language of each render's `lang`."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    return env


@dataclass(frozen=True)
class Language:
    """One language of the emails: its code, catalog and Babel locale."""

    code: str
    catalog: gettext.NullTranslations
    locale: str

    @property
    def english(self) -> bool:
        """The source language: text is used as written."""
        return self.code == DEFAULT_LANGUAGE

    def gettext(self, message: str) -> str:
        """The message in this language."""
        return self.catalog.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The form for `n`."""
        return self.catalog.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        """The message in its context ('dataset label')."""
        return self.catalog.pgettext(context, message)


@functools.cache
def language(code: str | None) -> Language:
    """The language an email is written in (English when `code` has no catalog)."""
    chosen = email_language(code)
    return Language(chosen, translations(chosen), format_locale(chosen))


ENGLISH = language(DEFAULT_LANGUAGE)
