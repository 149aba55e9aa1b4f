"""Feed parsing: feedparser on bytes, entries made safe and complete enough to store."""

from __future__ import annotations

import calendar
import html
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import feedparser

from flows.canonical import canonical_url, dedupe_key
from flows.guard import BlockedURL, check_url

EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)
TAG = re.compile(r"<[^>]*>")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")


class FeedParseError(Exception):
    """The body is not a feed, or is too broken to yield any entry."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __reduce__(self):
        return (FeedParseError, (self.kind, self.message))


@dataclass
class Entry:
    link: str
    canonical: str
    title: str
    summary: str
    guid: str
    author: str
    published: str | None
    dedupe_key: str


@dataclass
class ParsedFeed:
    title: str
    version: str
    entries: list[Entry]
    warning: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    total_entries: int = 0


def plain_text(value: str | None) -> str:
    """Feed text may carry markup, entities, control characters and newlines: one clean line."""
    text = html.unescape(TAG.sub(" ", value or ""))
    text = CONTROL.sub(" ", text)
    return " ".join(text.split())


def _date(entry: feedparser.FeedParserDict, now: datetime) -> datetime | None:
    """The entry's date, or None when missing or implausible (1970, far future)."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            try:
                moment = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
            if EARLIEST <= moment <= now + timedelta(days=1):
                return moment
    return None


def _link(entry: feedparser.FeedParserDict) -> str:
    candidates = [entry.get("link", "")]
    candidates += [item.get("href", "") for item in entry.get("links", []) if item.get("rel") == "alternate"]
    guid = entry.get("id", "")
    if entry.get("guidislink", True) or guid.startswith(("http://", "https://")):
        candidates.append(guid)
    return next((link.strip() for link in candidates if link and link.strip()), "")


def parse_feed(
    content: bytes,
    url: str,
    *,
    content_type: str = "",
    max_entries: int = 200,
    now: datetime | None = None,
) -> ParsedFeed:
    """Parse feed bytes (never a URL: feedparser would fetch it, or read a local file)."""
    now = now or datetime.now(UTC)
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    data = feedparser.parse(io.BytesIO(content), response_headers=headers, resolve_relative_uris=True,
                            sanitize_html=True)
    problem = data.get("bozo_exception")
    if not data.entries:
        if not data.version:
            raise FeedParseError("not_feed", f"{url} is not an RSS or Atom feed (got {content[:40]!r}...)")
        if data.bozo:
            raise FeedParseError("parse", f"{url}: the feed is malformed and has no readable entry ({problem})")
    parsed = ParsedFeed(
        title=plain_text(data.feed.get("title")),
        version=data.version or "unknown",
        entries=[],
        warning=f"malformed feed, entries recovered: {problem}" if data.bozo else None,
        total_entries=len(data.entries),
    )
    dated = []
    for position, raw in enumerate(data.entries):
        entry = _entry(raw, url, now, parsed.skipped)
        if entry is not None:
            dated.append((entry, position))
    # Newest first; undated entries keep their place in the feed's own order.
    dated.sort(key=lambda pair: (pair[0].published or "", -pair[1]), reverse=True)
    seen: set[str] = set()
    for entry, _ in dated:
        if entry.canonical in seen:
            parsed.skipped.append((entry.link, "the same link appears twice in the feed"))
            continue
        seen.add(entry.canonical)
        parsed.entries.append(entry)
    if len(parsed.entries) > max_entries:
        parsed.skipped.append((url, f"{len(parsed.entries) - max_entries} older entries beyond the newest {max_entries}"))
        parsed.entries = parsed.entries[:max_entries]
    return parsed


def _entry(raw: feedparser.FeedParserDict, feed_url: str, now: datetime, skipped: list) -> Entry | None:
    link = _link(raw)
    if not link:
        skipped.append((plain_text(raw.get("title"))[:80] or "(untitled)", "the entry has no link"))
        return None
    try:
        check_url(link)
    except BlockedURL as error:
        skipped.append((link[:200], f"link refused: {error}"))
        return None
    summary = plain_text(raw.get("summary") or (raw.get("content") or [{}])[0].get("value"))
    title = plain_text(raw.get("title")) or (summary[:90] + "…" if len(summary) > 90 else summary) or link
    published = _date(raw, now)
    return Entry(
        link=link,
        canonical=canonical_url(link),
        title=title,
        summary=summary,
        guid=str(raw.get("id") or link),
        author=plain_text(raw.get("author")),
        published=published.isoformat(timespec="seconds") if published else None,
        dedupe_key=dedupe_key(feed_url, title, summary),
    )
