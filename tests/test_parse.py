"""Feed parsing: defined outcomes for the traps real feeds set."""

from datetime import UTC, datetime

import pytest

from flows.parse import FeedParseError, parse_feed

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def rss(items: str, encoding: str = "utf-8") -> bytes:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://outlet.example/</link>{items}</channel></rss>"
    ).encode(encoding)


def item(
    title: str,
    link: str,
    date: str = "Sat, 21 Nov 2026 08:00:00 GMT",
    guid: str = "",
    extra: str = "",
) -> str:
    guid_tag = f"<guid>{guid}</guid>" if guid else ""
    return f"<item><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate>{guid_tag}{extra}</item>"


def test_rss_entries_newest_first():
    body = rss(
        item("Old", "https://o.example/1", "Fri, 20 Nov 2026 08:00:00 GMT")
        + item("New", "https://o.example/2", "Sat, 21 Nov 2026 08:00:00 GMT")
    )
    parsed = parse_feed(body, "https://o.example/feed", now=NOW)
    assert [e.title for e in parsed.entries] == ["New", "Old"]
    assert parsed.entries[0].published == "2026-11-21T08:00:00+00:00"
    assert parsed.warning is None


def test_atom_entries():
    body = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
    <entry><title type="html">Rabat &amp;amp; Paris</title><link rel="alternate" href="https://a.example/x"/>
    <id>tag:a,2026:x</id><updated>2026-11-20T10:00:00Z</updated><summary>Teaser</summary></entry></feed>"""
    parsed = parse_feed(body, "https://a.example/atom", now=NOW)
    assert parsed.version.startswith("atom")
    assert parsed.entries[0].title == "Rabat & Paris"
    assert parsed.entries[0].summary == "Teaser"


def test_html_page_is_not_a_feed():
    with pytest.raises(FeedParseError) as caught:
        parse_feed(
            b"<!DOCTYPE html><html><body><p>Hello</p></body></html>", "https://x.example/", now=NOW
        )
    assert caught.value.kind == "not_feed"


def test_empty_and_garbage_bodies():
    for body in (b"", b"\x00\x01\x02", b"{}"):
        with pytest.raises(FeedParseError):
            parse_feed(body, "https://x.example/", now=NOW)


def test_unsafe_links_are_skipped_with_a_reason():
    body = rss(
        item("Good", "https://o.example/ok")
        + item("Evil", "javascript:alert(1)")
        + item("Local", "file:///etc/passwd")
    )
    parsed = parse_feed(body, "https://o.example/feed", now=NOW)
    assert [e.title for e in parsed.entries] == ["Good"]
    assert len(parsed.skipped) == 2 and all("refused" in reason for _, reason in parsed.skipped)


def test_titles_with_markup_and_newlines_become_one_clean_line():
    body = rss(item("&lt;b&gt;Bold&lt;/b&gt; line\nbreak\u2028here\x0b", "https://o.example/1"))
    entry = parse_feed(body, "https://o.example/feed", now=NOW).entries[0]
    assert entry.title == "Bold line break here"


def test_implausible_dates_are_dropped():
    body = rss(
        item("Epoch", "https://o.example/1", "Thu, 01 Jan 1970 00:00:00 GMT")
        + item("Future", "https://o.example/2", "Mon, 01 Jan 2091 00:00:00 GMT")
        + item("Undated", "https://o.example/3", "not a date")
    )
    parsed = parse_feed(body, "https://o.example/feed", now=NOW)
    assert len(parsed.entries) == 3 and all(e.published is None for e in parsed.entries)


def test_duplicate_links_and_guids_are_kept_once():
    body = rss(
        item("A", "https://o.example/1?utm_source=rss", guid="g1")
        + item("A again", "https://o.example/1", guid="g1")
    )
    parsed = parse_feed(body, "https://o.example/feed", now=NOW)
    assert len(parsed.entries) == 1
    assert parsed.skipped and "twice" in parsed.skipped[0][1]


def test_relative_links_are_resolved_against_the_feed():
    body = rss(item("Rel", "/news/42.html"))
    entry = parse_feed(body, "https://o.example/feeds/all.xml", now=NOW).entries[0]
    assert entry.link == "https://o.example/news/42.html"


def test_missing_title_and_link():
    body = rss(
        "<item><description>Only a summary of the news item, long enough to be a title</description>"
        "<link>https://o.example/9</link></item><item><title>No link</title></item>"
    )
    parsed = parse_feed(body, "https://o.example/feed", now=NOW)
    assert parsed.entries[0].title.startswith("Only a summary")
    assert any("no link" in reason for _, reason in parsed.skipped)


def test_only_the_newest_entries_are_kept():
    items = "".join(
        item(
            f"N{i}", f"https://o.example/{i}", f"Sat, 21 Nov 2026 {i % 24:02d}:{i % 60:02d}:00 GMT"
        )
        for i in range(300)
    )
    parsed = parse_feed(rss(items), "https://o.example/feed", max_entries=200, now=NOW)
    assert len(parsed.entries) == 200 and parsed.total_entries == 300
    assert any("beyond the newest 200" in reason for _, reason in parsed.skipped)


def test_malformed_feed_with_entries_is_a_warning():
    body = rss(item("Fine", "https://o.example/1")).replace(b"</channel>", b"<broken></channel>")
    parsed = parse_feed(body, "https://o.example/feed", now=NOW)
    assert parsed.entries and parsed.warning


def test_latin1_feed_declared():
    body = rss(item("Sécurité: naïve", "https://o.example/1"), encoding="iso-8859-1")
    assert parse_feed(body, "https://o.example/feed", now=NOW).entries[0].title == "Sécurité: naïve"


def test_external_entities_are_not_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><title>T</title><item><title>&x;</title>'
        "<link>https://o.example/1</link></item></channel></rss>"
    ).encode()
    try:
        parsed = parse_feed(body, "https://o.example/feed", now=NOW)
    except FeedParseError:
        return
    assert all("TOPSECRET" not in e.title for e in parsed.entries)
