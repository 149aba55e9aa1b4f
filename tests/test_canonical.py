"""One address per story."""

import pytest

from flows.canonical import canonical_url, dedupe_key, without_tracking


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://WWW.Outlet.example:443/news/1?utm_source=rss&utm_medium=feed#top",
            "https://outlet.example/news/1",
        ),
        (
            "https://outlet.example/news/1?fbclid=abc&gclid=x&id=5",
            "https://outlet.example/news/1?id=5",
        ),
        ("https://outlet.example/news/1?b=2&a=1", "https://outlet.example/news/1?a=1&b=2"),
        ("https://m.outlet.example/news/1", "https://outlet.example/news/1"),
        ("https://amp.outlet.example/news/1/amp/", "https://outlet.example/news/1"),
        ("https://outlet.example/news/1.amp.html", "https://outlet.example/news/1.html"),
        ("https://outlet.example/news/1?amp=1", "https://outlet.example/news/1"),
        ("http://outlet.example:8080/x", "http://outlet.example:8080/x"),
        (
            "https://news.google.com/articles?url=https%3A%2F%2Foutlet.example%2Fnews%2F1%3Futm_source%3Dg",
            "https://outlet.example/news/1",
        ),
        (
            "https://l.facebook.com/l.php?u=https%3A%2F%2Foutlet.example%2Fnews%2F1&h=x",
            "https://outlet.example/news/1",
        ),
    ],
)
def test_canonical_forms(url, expected):
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://www.outlet.example/news/1?utm_source=rss&id=5&fbclid=x#top",
            "https://www.outlet.example/news/1?id=5#top",
        ),
        (
            "https://m.outlet.example/news/1.amp.html?b=%2F&a=1",
            "https://m.outlet.example/news/1.amp.html?b=%2F&a=1",
        ),
        (" https://outlet.example/news/1?xtor=RSS-3 ", "https://outlet.example/news/1"),
    ],
)
def test_stored_links_lose_tracking_parameters_and_nothing_else(url, expected):
    assert without_tracking(url) == expected


def test_distinct_articles_stay_distinct():
    assert canonical_url("https://outlet.example/news/1") != canonical_url(
        "https://outlet.example/news/2"
    )
    assert canonical_url("https://outlet.example/a?id=1") != canonical_url(
        "https://outlet.example/a?id=2"
    )


def test_dedupe_key_survives_guid_and_url_churn_but_not_a_new_story():
    first = dedupe_key("https://o.example/feed", "Rabat hosts  talks", "Summary of the talks.")
    assert first == dedupe_key(
        "https://o.example/feed", "rabat hosts talks", "Summary of the talks."
    )
    assert first != dedupe_key("https://o.example/feed", "Rabat hosts talks", "A different teaser.")
    assert first != dedupe_key(
        "https://other.example/feed", "Rabat hosts talks", "Summary of the talks."
    )
