"""The pages in more than one language: gettext catalogs for the templates and the scripts.

Catalogs are the `.po` files under `web/locale/<lang>/LC_MESSAGES/messages.po` (English is the
source text and needs none). They are compiled in memory the first time a language is used
(no `.mo` files to build or commit) and kept. Adding a language is adding its catalog: see
web/README.md ("Translations").

Templates call `{{ _("...") }}` (Jinja2's i18n extension, new-style: `%(name)s` placeholders
are filled and escaped by Jinja2). The translation is picked per render from the template's
`lang` variable, never from shared state, so concurrent requests in different languages
cannot mix. The scripts get their strings as JSON in the page (`#c311-i18n`: only the strings
of the scripts that page loads), looked up by `C311._()` in common.js, English being the
fallback for anything missing.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, meta, pass_context
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import Response

from connect311_map_api.web.language import DEFAULT_LANGUAGE, choose_language, supported

__all__ = [
    "JS_KEYWORDS",
    "JS_OPTIONS",
    "LANG_COOKIE",
    "LOCALE_DIR",
    "N_",
    "available_languages",
    "format_locale",
    "gettext_for",
    "js_catalog",
    "language_context",
    "page_environment",
    "page_scripts",
    "remember_language",
    "request_language",
    "translations",
]

WEB_DIR = Path(__file__).parent
LOCALE_DIR = WEB_DIR / "locale"
JS_DIR = WEB_DIR / "static" / "js"
TEMPLATES_DIR = WEB_DIR / "templates"
SCRIPT_PREFIX = "/static/web/js/"
LANG_COOKIE = "c311_lang"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600
JS_KEYWORDS: dict[str, Any] = {"_": None, "_n": (1, 2)}
"""The scripts' gettext calls: `_("text", {name: value})` and `_n("one", "many", n)`."""
JS_OPTIONS = {"jsx": False}
"""The scripts have no JSX; with it on, Babel reads a regex such as /</g as a tag and skips
the strings after it."""


def N_(message: str) -> str:  # the gettext convention's name for "translate later"
    """Mark a string for the catalog where it is defined; it is translated where shown."""
    return message


def _po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


@functools.cache
def available_languages() -> tuple[str, ...]:
    """English, then every language with a catalog, in code order."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/messages.po"))
    return (DEFAULT_LANGUAGE, *(code for code in found if code != DEFAULT_LANGUAGE))


@functools.cache
def _catalog(lang: str) -> Catalog | None:
    path = _po_path(lang)
    if lang == DEFAULT_LANGUAGE or not path.is_file():
        return None
    with path.open("rb") as po:
        return read_po(po, locale=lang)


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of a language (English and unknown ones: the source text)."""
    catalog = _catalog(lang)
    if catalog is None:
        return gettext.NullTranslations()
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)  # a fuzzy (unchecked) entry stays English
    compiled.seek(0)
    return Translations(compiled)


def gettext_for(lang: str) -> Callable[[str], str]:
    """The `gettext` function of a language (for text built in Python)."""
    return translations(lang).gettext


@functools.cache
def format_locale(lang: str) -> str:
    """The Babel locale for dates and numbers: the language as written in the US ('es_US':
    1,234.5 and 3:04 p.m., as US cities print them), or the bare language."""
    try:
        return str(Locale.parse(f"{lang}_US"))
    except (UnknownLocaleError, ValueError):
        return lang


@functools.cache
def _language_name(lang: str) -> str:
    """'English', 'Español': each language named in itself."""
    try:
        name = Locale.parse(lang).get_display_name(lang) or lang
    except (UnknownLocaleError, ValueError):
        return lang
    return name[:1].upper() + name[1:]


@functools.cache
def _js_msgids(script: str) -> tuple[str, ...]:
    """The strings one script looks up (extracted from it as the catalog test does)."""
    path = JS_DIR / script
    if not path.is_file():
        return ()
    ids: list[str] = []
    for _line, message, _comments, _context in extract_from_file(
        "javascript", str(path), keywords=JS_KEYWORDS, options=JS_OPTIONS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid and msgid not in ids:
            ids.append(msgid)
    return tuple(ids)


@functools.cache
def page_scripts(template: str) -> tuple[str, ...]:
    """The site's own scripts a page loads: in it, its layout and its includes (read from the
    templates themselves, so a script added to a page brings its strings along)."""
    env = page_environment(TEMPLATES_DIR)  # only parsed here, never rendered
    seen: set[str] = set()
    todo = [template]
    scripts: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
        for part in source.split(SCRIPT_PREFIX)[1:]:
            script = part.split('"', 1)[0]
            if script.endswith(".js") and "/" not in script:
                scripts.add(script)
        todo += [t for t in meta.find_referenced_templates(env.parse(source)) if t]
    return tuple(sorted(scripts))


@functools.cache
def js_catalog(lang: str, template: str) -> dict[str, Any]:
    """What a page's scripts need: the language, its locale for Intl, and the strings they
    look up, translated (a list of plural forms for `_n`); English sends no strings."""
    locale = format_locale(lang).replace("_", "-")
    catalog = _catalog(lang)
    messages: dict[str, str | list[str]] = {}
    if catalog is not None:
        for script in page_scripts(template):
            for msgid in _js_msgids(script):
                message = catalog.get(msgid)
                if message is None or message.fuzzy or not message.string:
                    continue
                text = message.string
                messages[msgid] = list(text) if isinstance(text, tuple) else text
    return {"lang": lang, "locale": locale, "messages": messages}


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(str(context.get("lang") or DEFAULT_LANGUAGE)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(str(context.get("lang") or DEFAULT_LANGUAGE)).ngettext(singular, plural, n)


def page_environment(directory: Path, **options: Any) -> Environment:
    """A Jinja2 environment for the pages: autoescaped, with `_()` in the template's `lang`."""
    env = Environment(
        loader=FileSystemLoader(str(directory)),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        **options,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    return env


def request_language(request: Request) -> str:
    """The language of this request's page (see language.choose_language)."""
    return choose_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
        available_languages(),
    )


def _switch_href(request: Request, lang: str) -> str:
    """This page's address in another language (its other query parameters kept)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return f"{request.url.path}?{urlencode([*params, ('lang', lang)])}"


def language_context(request: Request) -> dict[str, Any]:
    """What every page template gets: its language and the language switch's links."""
    lang = request_language(request)
    others = [
        {"code": code, "name": _language_name(code), "href": _switch_href(request, code)}
        for code in available_languages()
        if code != lang
    ]
    return {"lang": lang, "other_languages": others}


def remember_language(request: Request, response: Response) -> None:
    """Keep a choice made with the switch (`?lang=`) for the next pages, for a year."""
    chosen = supported(request.query_params.get("lang"), available_languages())
    response.headers["Content-Language"] = request_language(request)
    if chosen and chosen != request.cookies.get(LANG_COOKIE):
        response.set_cookie(
            LANG_COOKIE,
            chosen,
            max_age=LANG_COOKIE_MAX_AGE_S,
            path="/",
            samesite="lax",
            httponly=True,  # the scripts read the language from the page, not the cookie
            secure=request.url.scheme == "https",
        )
