"""Feed parsing: feedparser on bytes, entries made safe and complete enough to store."""

from __future__ import annotations

import calendar
import html
import io
import re
import xml.parsers.expat
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import feedparser

from flows.canonical import canonical_url, dedupe_key
from flows.guard import BlockedURL, check_url

EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)
TAG = re.compile(r"<[^>]*>")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")
# feedparser spends about half a millisecond on each entry: a 100,000-item feed would take close to a
# minute, past the worker's wall-clock limit. Beyond this many items per entry kept, only the newest
# (this many times max_entries, a margin for entries skipped later) are handed to feedparser.
PRETRIM_FACTOR = 5
ITEM_TAGS = frozenset({"item", "entry"})
# By precedence.
DATE_TAGS = ("published", "pubdate", "issued", "updated", "modified", "date", "created")


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
        # A plain dict lookup: feedparser's alias warns and double-counts.
        parsed = dict.get(entry, key)
        if parsed:
            try:
                moment = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
            if EARLIEST <= moment <= now + timedelta(days=1):
                return moment
    return None


def _link(entry: feedparser.FeedParserDict) -> str:
    # FeedBurner keeps the publisher's own address beside its redirector link.
    candidates = [entry.get("feedburner_origlink", ""), entry.get("link", "")]
    candidates += [
        item.get("href", "") for item in entry.get("links", []) if item.get("rel") == "alternate"
    ]
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
    # Without a content type feedparser flags every feed as malformed; XML is what a feed claims to be.
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    content, dropped = _newest_items_only(content, max_entries * PRETRIM_FACTOR, now)
    data = feedparser.parse(
        io.BytesIO(content),
        response_headers=headers,
        resolve_relative_uris=True,
        sanitize_html=True,
    )
    problem = data.get("bozo_exception")
    version = data.get("version") or ""
    if not data.entries:
        if not version:
            raise FeedParseError(
                "not_feed", f"{url} is not an RSS or Atom feed (got {content[:40]!r}...)"
            )
        if data.bozo:
            raise FeedParseError(
                "parse", f"{url}: the feed is malformed and has no readable entry ({problem})"
            )
    parsed = ParsedFeed(
        title=plain_text(data.feed.get("title")),
        version=version or "unknown",
        entries=[],
        warning=f"malformed feed, entries recovered: {problem}" if data.bozo else None,
        total_entries=len(data.entries) + dropped,
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
    if len(parsed.entries) > max_entries or dropped:
        older = len(parsed.entries) - max_entries + dropped
        parsed.skipped.append((url, f"{older} older entries beyond the newest {max_entries}"))
        parsed.entries = parsed.entries[:max_entries]
    return parsed


def _newest_items_only(content: bytes, keep: int, now: datetime) -> tuple[bytes, int]:
    """A huge feed cut down to its `keep` newest items before feedparser sees it, and how many were cut.

    One pass of expat (C, no entity or DTD loading) finds each top-level item's byte span and date;
    the other items' bytes are removed and everything else is left as it was. A feed expat cannot
    read (malformed, an encoding it lacks, a DTD with entities) goes to feedparser whole, as before.
    """
    if (
        content.count(b"item") + content.count(b"entry") <= keep
        or b"<!ENTITY" in content
        or b"\x00" in content[:4]
    ):
        return content, 0
    spans: list[tuple[int, int, float | None]] = []
    depth, item_depth, start, dates, date_tag, text = 0, 0, 0, {}, "", []
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")

    def on_start(name: str, _attrs: dict) -> None:
        nonlocal depth, item_depth, start, dates, date_tag
        depth += 1
        local = name.rsplit(" ", 1)[-1].rsplit(":", 1)[-1].lower()
        if not item_depth and local in ITEM_TAGS:
            item_depth, start, dates = depth, parser.CurrentByteIndex, {}
        elif item_depth and depth == item_depth + 1 and local in DATE_TAGS and local not in dates:
            date_tag = local
            text.clear()

    def on_end(_name: str) -> None:
        nonlocal depth, item_depth, date_tag
        if date_tag:
            dates[date_tag] = "".join(text)
            date_tag = ""
        if item_depth == depth:
            stop = content.index(b">", parser.CurrentByteIndex) + 1
            when = next((_moment(dates[tag], now) for tag in DATE_TAGS if tag in dates), None)
            spans.append((start, stop, when))
            item_depth = 0
        depth -= 1

    def on_text(data: str) -> None:
        if date_tag:
            text.append(data)

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = (
        on_start,
        on_end,
        on_text,
    )
    try:
        parser.Parse(content, True)
    except (xml.parsers.expat.ExpatError, ValueError):
        return content, 0
    if len(spans) <= keep:
        return content, 0
    # The order parse_feed keeps: dated entries newest first, then undated ones in feed order.
    order = sorted(
        range(len(spans)),
        key=lambda i: (spans[i][2] is not None, spans[i][2] or 0.0, -i),
        reverse=True,
    )
    cut = sorted(order[keep:])
    pieces, position = [], 0
    for index in cut:
        pieces.append(content[position : spans[index][0]])
        position = spans[index][1]
    pieces.append(content[position:])
    return b"".join(pieces), len(cut)


def _moment(value: str, now: datetime) -> float | None:
    """A feed date (RFC 822 or ISO 8601) as a timestamp, or None when unreadable or implausible."""
    value = value.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() if EARLIEST <= moment <= now + timedelta(days=1) else None


def _entry(
    raw: feedparser.FeedParserDict, feed_url: str, now: datetime, skipped: list
) -> Entry | None:
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
    title = (
        plain_text(raw.get("title"))
        or (summary[:90] + "…" if len(summary) > 90 else summary)
        or link
    )
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
