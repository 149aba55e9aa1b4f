"""The poll steps without Prefect, against a real local server and real SQLite."""

from datetime import UTC, datetime, timedelta

import pytest

from flows.localserver import Resource
from flows.poll import (
    fetch_articles,
    fetch_feed,
    parse_fetched,
    policy_from,
    select_new,
    store_feed_poll,
)
from flows.settings import load_settings
from flows.workers import WorkerPool
from storage import feeds as feed_store
from storage import open_database
from tests.conftest import write_config

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PAGE = (
    "<html><body><article><h1>{title}</h1><p>"
    + "The Royal Armed Forces and their partners met. " * 12
    + "</p></article></body></html>"
)


def rss(site_url: str, items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>{site_url}{path}</link><guid>{guid}</guid>"
        f"<description>Teaser for {title}</description></item>"
        for title, path, guid in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


@pytest.fixture
def env(site, tmp_path):
    config = write_config(tmp_path, site.url, [("/feed.xml", "Feed")])
    settings = load_settings(config, env={})
    db = open_database(settings.storage.path)
    feed_store.sync_feeds(db, [(f.url, f.name) for f in settings.feeds], NOW)
    with WorkerPool(1, timeout=20) as pool:
        yield {"site": site, "settings": settings, "db": db, "pool": pool}


def poll_once(env, http, now=NOW):
    feed = feed_store.list_feeds(env["db"])[0]
    result = fetch_feed(http, feed, env["settings"])
    if result.not_modified:
        return result, []
    parsed = parse_fetched(env["pool"], result, env["settings"], now)
    new = select_new(env["db"], parsed.entries)
    articles = fetch_articles(http, env["pool"], new, feed["url"], env["settings"], now)
    store_feed_poll(
        env["db"], feed, result, articles, [], env["settings"], now, len(parsed.entries)
    )
    return result, articles


def test_guid_churn_does_not_store_a_story_twice(env):
    from flows.fetch import make_client

    site = env["site"]
    site.routes["/a.html"] = Resource(PAGE.format(title="A").encode())
    site.routes["/a2.html"] = Resource(PAGE.format(title="A").encode())
    site.routes["/feed.xml"] = Resource(
        rss(site.url, [("Story A", "/a.html", "guid-1")]), "application/rss+xml"
    )
    with make_client("t", 3, policy_from(env["settings"])) as http:
        _, first = poll_once(env, http)
        assert len(first) == 1
        # The publisher regenerates GUIDs and links for the same entry.
        site.routes["/feed.xml"] = Resource(
            rss(site.url, [("Story A", "/a2.html", "guid-2")]), "application/rss+xml"
        )
        _, second = poll_once(env, http, NOW + timedelta(minutes=30))
        assert second == []


def test_same_bytes_with_a_new_etag_is_not_parsed_again(env):
    from flows.fetch import make_client
    from flows.poll import body_hash

    site = env["site"]
    site.routes["/a.html"] = Resource(PAGE.format(title="A").encode())
    body = rss(site.url, [("Story A", "/a.html", "g")])
    site.routes["/feed.xml"] = Resource(
        body, "application/rss+xml", conditional=False, headers={"ETag": '"v1"'}
    )
    with make_client("t", 3, policy_from(env["settings"])) as http:
        poll_once(env, http)
        site.routes["/feed.xml"] = Resource(
            body, "application/rss+xml", conditional=False, headers={"ETag": '"v2"'}
        )
        feed = feed_store.list_feeds(env["db"])[0]
        result = fetch_feed(http, feed, env["settings"])
        assert result.status == 200 and body_hash(result.content) == feed["body_hash"]


def test_permanent_redirect_moves_the_feed_for_good(env):
    from flows.fetch import make_client

    site = env["site"]
    site.routes["/a.html"] = Resource(PAGE.format(title="A").encode())
    site.routes["/new-feed.xml"] = Resource(
        rss(site.url, [("Story A", "/a.html", "g")]), "application/rss+xml"
    )

    def moved(request):
        request.send_response(301)
        request.send_header("Location", "/new-feed.xml")
        request.send_header("Content-Length", "0")
        request.end_headers()

    site.routes["/feed.xml"] = moved
    with make_client("t", 3, policy_from(env["settings"])) as http:
        poll_once(env, http)
    rows = {row["url"]: row for row in feed_store.list_feeds(env["db"])}
    assert (
        rows[site.url + "/feed.xml"]["status"] == "moved"
        and "update your config" in rows[site.url + "/feed.xml"]["note"]
    )
    assert rows[site.url + "/new-feed.xml"]["status"] == "active"
    # The config still lists the old address: it is not polled again.
    feed_store.sync_feeds(env["db"], [(site.url + "/feed.xml", "Feed")], NOW)
    due = [row["url"] for row in feed_store.due_feeds(env["db"], NOW + timedelta(days=1))]
    assert due == [site.url + "/new-feed.xml"]
    articles = env["db"].execute("SELECT feed_url FROM articles").fetchall()
    assert articles == [(site.url + "/new-feed.xml",)]
