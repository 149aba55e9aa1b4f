"""A hostile server on 127.0.0.1, met by the poll's own steps (fetch_feed, parse_fetched,
fetch_articles): each trap ends with its defined, recorded outcome and the rest of the poll goes on."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

import flows.parse
from flows.canonical import canonical_url
from flows.extract import extract_page
from flows.fetch import FetchError, make_client
from flows.localserver import Resource
from flows.parse import Entry, FeedParseError, ParsedFeed
from flows.poll import (
    HostLimiter,
    fetch_article,
    fetch_articles,
    fetch_feed,
    parse_fetched,
    policy_from,
)
from flows.settings import Settings, with_overrides
from flows.workers import WorkerPool

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
WORK_TIMEOUT = (
    4.0  # the pool's limit in this module: far above a normal page, far below the slow one
)
ARTICLE = (
    "Rabat et Paris ont signé un accord de coopération militaire. Le ministre a jugé l'approche "
    "naïve mais utile, et les deux délégations ont promis de se revoir avant la fin de l'année. "
)


def loopback_settings(**fetch: object) -> Settings:
    fetch = {
        "allowed_networks": ("127.0.0.1/32",),
        "connect_timeout": 1.0,
        "request_deadline": 3.0,
    } | fetch
    return with_overrides(Settings(), fetch=fetch)


def rss(items: str, title: str = "Hostile") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://outlet.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()


def item(
    title: str,
    link: str,
    *,
    date: datetime | None = NOW - timedelta(hours=1),
    guid: str = "",
    date_text: str = "",
) -> str:
    when = date_text or (format_datetime(date, usegmt=True) if date else "")
    return (
        f"<item><title>{title}</title><link>{link}</link>"
        + (f"<guid>{guid}</guid>" if guid else "")
        + (f"<pubDate>{when}</pubDate>" if when else "")
        + "</item>"
    )


def page(text: str, title: str = "Article", charset_meta: str = "") -> str:
    meta = f'<meta charset="{charset_meta}">' if charset_meta else ""
    return (
        f"<html><head>{meta}<title>{title}</title></head><body><nav><a href='/'>Accueil</a></nav>"
        f"<article><h1>{title}</h1><p>{text}</p><p>{text}</p></article>"
        "<footer>© Outlet - tous droits réservés</footer></body></html>"
    )


def entry(url: str, summary: str = "The feed's own summary of the story.") -> Entry:
    return Entry(
        link=url,
        canonical=canonical_url(url),
        title=url.rsplit("/", 1)[-1],
        summary=summary,
        guid=url,
        author="",
        published=None,
        dedupe_key=url,
    )


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    """Two workers, started and warm before any test counts on their time limit."""
    with WorkerPool(2, timeout=WORK_TIMEOUT) as workers:
        with ThreadPoolExecutor(2) as executor:
            list(
                executor.map(
                    lambda _: workers.run(
                        extract_page, b"<p>warm</p>", "text/html", "http://127.0.0.1/", timeout=60
                    ),
                    range(2),
                )
            )
        yield workers


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with make_client("atlaswatch-test", 1.0, policy_from(loopback_settings())) as client:
        yield client


def poll_feed(
    http: httpx.Client, pool: WorkerPool, url: str, settings: Settings | None = None
) -> ParsedFeed:
    settings = settings or loopback_settings()
    result = fetch_feed(http, {"url": url}, settings)
    return parse_fetched(pool, result, settings, NOW)


# ---------------------------------------------------------------------------------------------
# Feeds
# ---------------------------------------------------------------------------------------------


def test_file_and_javascript_links_are_skipped_and_the_rest_kept(site, http, pool):
    site.routes["/feed.xml"] = Resource(
        rss(
            item("Good one", "https://outlet.example/good")
            + item("Passwords", "file:///etc/passwd")
            + item("Cookie thief", "javascript:alert(document.cookie)")
            + item("Mixed case", " JaVaScRiPt:alert(1)")
            + item("Inline", "data:text/html;base64,PHNjcmlwdD4=")
            + "<item><title>Guid only</title><guid>file:///etc/shadow</guid></item>"
            + item("Good two", "https://outlet.example/good-2")
        ),
        "application/rss+xml",
    )
    parsed = poll_feed(http, pool, site.url + "/feed.xml")
    assert sorted(e.title for e in parsed.entries) == ["Good one", "Good two"]
    assert parsed.total_entries == 7
    refused = [(link, reason) for link, reason in parsed.skipped if "refused" in reason]
    assert len(refused) == 5, parsed.skipped
    for scheme in ("file", "javascript", "data"):
        assert any(f"not {scheme}" in reason for _, reason in refused), scheme
    assert all(e.link.startswith("https://") for e in parsed.entries)


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/rss+xml"])
def test_an_html_page_served_as_a_feed_is_not_a_feed(site, http, pool, content_type):
    site.routes["/feed"] = Resource(page(ARTICLE).encode(), content_type)
    with pytest.raises(FeedParseError) as caught:
        poll_feed(http, pool, site.url + "/feed")
    assert caught.value.kind == "not_feed"
    assert "not an RSS or Atom feed" in caught.value.message


def _huge_feed(count: int) -> bytes:
    """Oldest first, so that the newest 200 are at the very end of the document."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return rss(
        "".join(
            f"<item><title>Item {i}</title><link>https://outlet.example/a/{i}</link><guid>g{i}</guid>"
            f"<pubDate>{format_datetime(start + timedelta(minutes=i), usegmt=True)}</pubDate></item>"
            for i in range(count)
        )
    )


@pytest.fixture(scope="module")
def huge_feed() -> bytes:
    return _huge_feed(100_000)


def _stream_without_length(body: bytes):
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Connection", "close")
        request.end_headers()
        try:
            for start in range(0, len(body), 256 * 1024):
                request.wfile.write(body[start : start + 256 * 1024])
        except OSError:  # the client hung up at its cap
            pass
        request.close_connection = True

    return handler


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-content-length"])
def test_a_100k_item_feed_is_refused_at_the_default_5_mib_cap(site, http, huge_feed, declared):
    assert len(huge_feed) > Settings().fetch.max_feed_bytes == 5 * 1024 * 1024
    site.routes["/huge"] = (
        Resource(huge_feed, "application/rss+xml")
        if declared
        else _stream_without_length(huge_feed)
    )
    with pytest.raises(FetchError) as caught:
        fetch_feed(http, {"url": site.url + "/huge"}, loopback_settings())
    assert caught.value.kind == "too_large"


def test_a_100k_item_feed_under_a_raised_cap_keeps_the_newest_200_in_time(site, http, huge_feed):
    settings = loopback_settings(max_feed_bytes=64 * 1024 * 1024)
    site.routes["/huge"] = Resource(huge_feed, "application/rss+xml")
    result = fetch_feed(http, {"url": site.url + "/huge"}, settings)
    # A pool whose limit is the configured work timeout: the parse must finish inside it.
    with WorkerPool(1, timeout=settings.fetch.work_timeout) as parse_pool:
        started = time.monotonic()
        parsed = parse_fetched(parse_pool, result, settings, NOW)
        elapsed = time.monotonic() - started
    assert elapsed < settings.fetch.work_timeout
    assert parsed.total_entries == 100_000
    assert [e.title for e in parsed.entries] == [f"Item {i}" for i in range(99_999, 99_799, -1)]
    assert any("99800 older entries" in reason for _, reason in parsed.skipped)


def test_cutting_a_huge_feed_down_first_keeps_the_same_entries(monkeypatch):
    """The newest-items cut before feedparser is only a shortcut: shuffled dates, undated entries,
    an Atom feed and RSS with illegally nested items give what a full parse gives."""
    order = list(range(1_500))
    random.Random(7).shuffle(order)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def when(i: int) -> str:
        return "" if i % 7 == 0 else format_datetime(start + timedelta(minutes=i), usegmt=True)

    rss_body = rss(
        "".join(
            item(
                f"R{i}", f"https://outlet.example/r/{i}", date_text=when(i) or "not a date"
            ).replace("</item>", "<item/></item>")
            for i in order
        )
    )
    atom_body = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        + "".join(
            f'<entry><title>A{i}</title><link href="https://outlet.example/a/{i}"/><id>a{i}</id>'
            + (f"<updated>{(start + timedelta(minutes=i)).isoformat()}</updated>" if i % 7 else "")
            + "</entry>"
            for i in order
        )
        + "</feed>"
    ).encode()
    for body in (rss_body, atom_body):
        cut = flows.parse.parse_feed(body, "https://outlet.example/feed", now=NOW)
        with monkeypatch.context() as patch:
            patch.setattr(flows.parse, "PRETRIM_FACTOR", 10**6)
            whole = flows.parse.parse_feed(body, "https://outlet.example/feed", now=NOW)
        assert [e.title for e in cut.entries] == [e.title for e in whole.entries]
        assert len(cut.entries) == 200 and cut.entries[0].published > cut.entries[-1].published


def test_titles_carrying_html_and_newlines_become_one_clean_line(site, http, pool):
    site.routes["/feed.xml"] = Resource(
        rss(
            item(
                "<![CDATA[<b>Rabat</b>\n &amp; <i>Paris</i>\r\n sign\u2028deal\x0b]]>",
                "https://outlet.example/1",
            )
            + item(
                "&lt;img src=x onerror=alert(1)&gt;Morocco&#10;buys&#13;drones&#x2029;now",
                "https://outlet.example/2",
            ),
            title="Feed\nname <em>with</em> markup",
        ),
        "application/rss+xml",
    )
    parsed = poll_feed(http, pool, site.url + "/feed.xml")
    assert sorted(e.title for e in parsed.entries) == [
        "Morocco buys drones now",
        "Rabat & Paris sign deal",
    ]
    assert parsed.title == "Feed name with markup"


def test_dates_in_1970_and_in_the_future_are_dropped_but_the_entries_kept(site, http, pool):
    site.routes["/feed.xml"] = Resource(
        rss(
            item("Epoch", "https://outlet.example/1", date_text="Thu, 01 Jan 1970 00:00:00 GMT")
            + item(
                "Future", "https://outlet.example/2", date=datetime.now(UTC) + timedelta(days=400)
            )
            + item(
                "Normal", "https://outlet.example/3", date=datetime.now(UTC) - timedelta(hours=2)
            )
        ),
        "application/rss+xml",
    )
    parsed = poll_feed(http, pool, site.url + "/feed.xml")
    published = {e.title: e.published for e in parsed.entries}
    assert published["Epoch"] is None and published["Future"] is None
    assert published["Normal"] is not None
    assert parsed.entries[0].title == "Normal"  # dated entries first


def test_duplicate_guids_and_links_are_kept_once(site, http, pool):
    site.routes["/feed.xml"] = Resource(
        rss(
            item("Repeated", "https://outlet.example/story", guid="story-1")
            + item("Repeated", "https://outlet.example/story", guid="story-1")
            + item(
                "Tracked",
                "https://outlet.example/other?utm_source=rss&utm_medium=feed",
                guid="other-a",
            )
            + item("Tracked again", "https://outlet.example/other#comments", guid="other-b")
            + item("Unique", "https://outlet.example/unique", guid="u")
        ),
        "application/rss+xml",
    )
    parsed = poll_feed(http, pool, site.url + "/feed.xml")
    assert sorted(e.canonical for e in parsed.entries) == [
        "https://outlet.example/other",
        "https://outlet.example/story",
        "https://outlet.example/unique",
    ]
    assert sum("twice" in reason for _, reason in parsed.skipped) == 2


def test_relative_links_are_resolved_against_the_feed_url(site, http, pool):
    site.routes["/feeds/all.xml"] = Resource(
        rss(
            item("Rooted", "/news/42.html")
            + item("Sibling", "story.html")
            + item("Up", "../archive/7")
        ),
        "application/rss+xml",
    )
    parsed = poll_feed(http, pool, site.url + "/feeds/all.xml")
    assert sorted(e.link for e in parsed.entries) == sorted(
        [site.url + "/news/42.html", site.url + "/feeds/story.html", site.url + "/archive/7"]
    )


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "text/html; charset=utf-8"],
    ids=["no-charset", "header-lies-utf8"],
)
def test_a_latin1_page_with_no_declared_charset_keeps_naive(site, http, pool, content_type):
    site.routes["/latin1"] = Resource(
        page(ARTICLE * 2, "Coopération naïve").encode("latin-1"), content_type
    )
    settings = loopback_settings()
    limiter = HostLimiter(settings.fetch.per_host_concurrency, settings.fetch.page_concurrency)
    extraction = fetch_article(http, pool, entry(site.url + "/latin1"), settings, limiter)
    assert extraction.status == "ok", extraction.note
    assert "naïve" in extraction.text and "coopération" in extraction.text
    assert "\ufffd" not in extraction.text and "Ã" not in extraction.text


def _hang_until(release: threading.Event):
    def handler(request: BaseHTTPRequestHandler) -> None:
        release.wait(30)  # a server that accepts and never answers (released at teardown)

    return handler


def _slow_to_extract() -> bytes:
    """About 5.6 MB of paragraphs and links: under the 10 MiB page cap, minutes of trafilatura work
    on one core, so it can only end by the worker's wall-clock limit."""
    body = "".join(
        f"<div><p>Paragraph {i} on the cooperation between partners, with words enough to count."
        f"</p><a href='/x{i}'>link {i}</a></div>"
        for i in range(40_000)
    )
    return f"<html><body><article>{body}</article></body></html>".encode()


def test_a_batch_with_404_pdf_hang_and_slow_page_still_returns_every_article(site, http, pool):
    release = threading.Event()
    site.routes["/good"] = Resource(
        page(ARTICLE * 3, "Accord signé").encode(), "text/html; charset=utf-8"
    )
    site.routes["/pdf"] = Resource(
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF", "application/pdf"
    )
    site.routes["/hang"] = _hang_until(release)
    site.routes["/slow"] = Resource(_slow_to_extract(), "text/html; charset=utf-8")
    settings = loopback_settings(request_deadline=2.0)
    entries = [entry(site.url + path) for path in ("/good", "/missing", "/pdf", "/hang", "/slow")]
    try:
        started = time.monotonic()
        articles = fetch_articles(http, pool, entries, site.url + "/feed.xml", settings, NOW)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    by_path = {article["url"].removeprefix(site.url): article for article in articles}
    assert list(by_path) == ["/good", "/missing", "/pdf", "/hang", "/slow"]
    assert elapsed < settings.fetch.request_deadline + WORK_TIMEOUT + 10

    good = by_path["/good"]
    assert (
        good["extraction_status"] == "ok"
        and "naïve" in good["text"]
        and not good["extraction_note"]
    )
    expected = {
        "/missing": ("fallback", "404"),
        "/pdf": ("skipped", "application/pdf"),
        "/hang": ("fallback", "timeout"),
        "/slow": ("fallback", "extraction failed (timeout"),
    }
    for path, (status, note) in expected.items():
        article = by_path[path]
        assert article["extraction_status"] == status, (path, article["extraction_note"])
        assert note in article["extraction_note"], (path, article["extraction_note"])
        assert "kept the feed summary" in article["extraction_note"]
        assert article["text"] == article["summary"] == "The feed's own summary of the story."

    # The pool is whole again: the worker killed at its limit was replaced.
    assert pool.run(
        extract_page, page(ARTICLE * 3).encode(), "text/html", site.url + "/again", timeout=60
    )["text"]
