"""Atom 1.0 documents (RFC 4287) with RFC 5005 paging links, built with ElementTree (pure).

Every text goes in through ElementTree, which escapes it; the characters XML 1.0 cannot
carry at all (C0 controls other than tab and newlines, lone surrogates, U+FFFE/U+FFFF) are
removed first, since an escaped one would still make the document unreadable to a parser.
Entry content is HTML built as an ElementTree too (never by pasting text into markup), then
carried escaped in `<content type="html">`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = [
    "ATOM_NS",
    "ATOM_TYPE",
    "Entry",
    "Feed",
    "Link",
    "render",
    "rfc3339",
    "tag_uri",
    "xml_text",
]

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
_NOT_XML = {c: None for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF)}
_NOT_XML.update({c: None for c in range(0xD800, 0xE000)})
# Characters a tag URI's specific part may carry as they are (RFC 4151: pchar / "/" / "?").
_TAG_SAFE = "!$&'()*+,;=:@/-._~"


def xml_text(value: object) -> str:
    """`value` as text XML 1.0 can carry (characters it forbids removed)."""
    return str(value).translate(_NOT_XML)


def rfc3339(moment: datetime) -> str:
    """An RFC 3339 UTC timestamp to the second; a naive datetime is taken as UTC."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%SZ")


def tag_uri(authority: str, *parts: str) -> str:
    """A tag URI (RFC 4151): `tag:<authority>,2024:<part>/<part>...`, each part escaped.

    The date is fixed: an id must never change once a reader has seen it.
    """
    specific = "/".join(quote(p, safe=_TAG_SAFE.replace("/", "")) for p in parts)
    return f"tag:{quote(authority.lower(), safe='.-')},2024:{specific}"


@dataclass(frozen=True)
class Link:
    """An atom:link (`rel` "alternate", "self", "first", "next", ...)."""

    href: str
    rel: str = "alternate"
    type: str | None = None


@dataclass(frozen=True)
class Entry:
    """One atom:entry; `details` are (label, value) rows shown as the HTML content."""

    id: str
    title: str
    updated: datetime
    link: str
    summary: str
    details: Sequence[tuple[str, str]] = ()
    published: datetime | None = None
    categories: Sequence[str] = ()


@dataclass(frozen=True)
class Feed:
    """One feed document (a page of it when it has `next`/`first` links)."""

    id: str
    title: str
    updated: datetime
    author: str
    author_uri: str
    links: Sequence[Link] = ()
    subtitle: str | None = None
    entries: Sequence[Entry] = field(default_factory=tuple)


def _sub(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, name, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _link(parent: ET.Element, link: Link) -> None:
    attrs = {"rel": link.rel, "href": link.href}
    if link.type:
        attrs["type"] = link.type
    _sub(parent, "link", **attrs)


def _content_html(entry: Entry) -> str:
    div = ET.Element("div")
    ET.SubElement(div, "p").text = xml_text(entry.summary)
    if entry.details:
        rows = ET.SubElement(div, "dl")
        for label, value in entry.details:
            ET.SubElement(rows, "dt").text = xml_text(label)
            ET.SubElement(rows, "dd").text = xml_text(value)
    anchor = ET.SubElement(ET.SubElement(div, "p"), "a", {"href": xml_text(entry.link)})
    anchor.text = "See this request"
    html: str = ET.tostring(div, encoding="unicode", method="html")
    return html


def _author(parent: ET.Element, feed: Feed) -> None:
    author = _sub(parent, "author")
    _sub(author, "name", feed.author)
    _sub(author, "uri", feed.author_uri)


def _entry(parent: ET.Element, entry: Entry, feed: Feed) -> None:
    element = _sub(parent, "entry")
    _sub(element, "id", entry.id)
    _sub(element, "title", entry.title, type="text")
    _sub(element, "updated", rfc3339(entry.updated))
    _author(element, feed)  # also on each entry: an aggregator copies entries, not feeds
    if entry.published is not None:
        _sub(element, "published", rfc3339(entry.published))
    _link(element, Link(entry.link, "alternate", "text/html"))
    for term in entry.categories:
        _sub(element, "category", term=term)
    _sub(element, "summary", entry.summary, type="text")
    _sub(element, "content", _content_html(entry), type="html")


def render(feed: Feed) -> bytes:
    """The feed as a UTF-8 Atom document."""
    # Plain names under a default xmlns: ElementTree's namespace option refuses unqualified
    # attributes (rel, href), and Atom's attributes are unqualified.
    root = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(root, "id", feed.id)
    _sub(root, "title", feed.title, type="text")
    if feed.subtitle:
        _sub(root, "subtitle", feed.subtitle, type="text")
    _sub(root, "updated", rfc3339(feed.updated))
    _author(root, feed)
    _sub(root, "generator", "Connect311")
    for link in feed.links:
        _link(root, link)
    for entry in feed.entries:
        _entry(root, entry, feed)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body
