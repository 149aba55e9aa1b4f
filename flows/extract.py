"""Article extraction: decode the page by its declared charset, then trafilatura without comments."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import trafilatura

from flows.dedupe import fingerprint

HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "")
META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE
)
HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", re.IGNORECASE)
MIN_TEXT_CHARS = 200


@dataclass
class Extraction:
    status: str  # "ok", "fallback" (feed summary kept), "skipped" (not a page we extract)
    text: str
    title: str = ""
    author: str = ""
    date: str = ""
    note: str = ""
    fingerprint: str | None = None  # computed beside the extraction, in the worker process


def is_extractable(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in HTML_TYPES


def _known_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(content: bytes, content_type: str = "") -> str:
    """The HTTP header's charset, then the page's <meta>, then UTF-8, then windows-1252 ("naïve" survives)."""
    header = HEADER_CHARSET.search(content_type or "")
    meta = META_CHARSET.search(content[:4096])
    declared = [
        header.group(1) if header else None,
        meta.group(1).decode("ascii", "ignore") if meta else None,
    ]
    codecs_declared = [codec for codec in map(_known_codec, declared) if codec]
    for codec in codecs_declared:
        try:
            return content.decode(codec)
        except UnicodeDecodeError:
            continue
    # A page true to its declared charset but for a sequence or two (a teaser cut mid-character):
    # keep that charset rather than read the whole page as windows-1252.
    for codec in codecs_declared:
        text = _decode_if_slightly_damaged(content, codec)
        if text is not None:
            return text
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8", "replace")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        text = _decode_if_slightly_damaged(content, "utf-8")
        return text if text is not None else content.decode("windows-1252", "replace")


def _decode_if_slightly_damaged(content: bytes, codec: str) -> str | None:
    """Decoded with replacement when the undecodable sequences are rare among the non-ASCII bytes
    (a Latin-1 page read as UTF-8 fails on nearly every accented letter; a damaged UTF-8 page, once)."""
    text = content.decode(codec, "replace")
    damaged = text.count("\ufffd")
    non_ascii = len(content.translate(None, bytes(range(0x80))))
    return text if damaged * 20 <= non_ascii else None


def extract_page(
    content: bytes, content_type: str, url: str, title: str = "", metadata: bool = True
) -> dict:
    """Runs in a worker process: returns a plain dict, never a library object. The story
    fingerprint of `title` (else the page's own) and the text is computed here too, off the
    poll's main process. Without `metadata` (the feed gave title and date) the page's title,
    author and date are not looked for: that search costs as much as the text's extraction."""
    html = decode_html(content, content_type)
    document = trafilatura.bare_extraction(
        html, url=url, include_comments=False, with_metadata=metadata, include_tables=False
    )
    if document is None:
        return {"text": "", "title": "", "author": "", "date": "", "fingerprint": None}
    text = document.text or ""
    return {
        "text": text,
        "title": document.title or "",
        "author": document.author or "",
        "date": document.date or "",
        "fingerprint": fingerprint(title or document.title or "", text),
    }


def choose_text(extracted: dict | None, summary: str, note: str = "") -> Extraction:
    """Keep the extracted text when it is substantial, else fall back to the feed's summary and say why."""
    text = (extracted or {}).get("text", "").strip()
    if len(text) >= MIN_TEXT_CHARS or (text and len(text) >= len(summary)):
        return Extraction(
            status="ok",
            text=text,
            title=extracted.get("title", ""),
            author=extracted.get("author", ""),
            date=extracted.get("date", ""),
            fingerprint=extracted.get("fingerprint"),
        )
    reason = note or (
        "the extractor found no article text"
        if not text
        else "the extracted text was shorter than the feed summary"
    )
    return Extraction(status="fallback", text=summary, note=f"{reason}; kept the feed summary")
