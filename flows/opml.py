"""Feed lists in and out as OPML, the format every feed reader exports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from xml.sax.saxutils import quoteattr

from flows.guard import BlockedURL, check_url


class OpmlError(Exception):
    """The file is not OPML atlaswatch can read."""


def read_opml(data: bytes) -> list[tuple[str, str]]:
    """(url, name) of every outline with an xmlUrl, nested folders included; non-http(s) URLs refused."""
    if b"<!ENTITY" in data[:4096]:
        raise OpmlError("the OPML file declares XML entities, which atlaswatch does not expand")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise OpmlError(f"not a well-formed OPML file: {error}") from error
    if root.tag.lower() != "opml":
        raise OpmlError(f"expected an <opml> document, found <{root.tag}>")
    feeds, seen = [], set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url or url in seen:
            continue
        try:
            check_url(url)
        except BlockedURL as error:
            raise OpmlError(str(error)) from error
        seen.add(url)
        feeds.append((url, (outline.get("title") or outline.get("text") or url).strip()))
    return feeds


def write_opml(feeds: Iterable[tuple[str, str]], title: str = "atlaswatch feeds") -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        f"  <head><title>{escape_text(title)}</title></head>",
        "  <body>",
    ]
    for url, name in feeds:
        lines.append(
            f'    <outline type="rss" text={quoteattr(name)} title={quoteattr(name)} xmlUrl={quoteattr(url)}/>'
        )
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
