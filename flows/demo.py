"""`atlaswatch demo`: the whole pipeline, offline, on sample outlets served from 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from flows.localserver import LocalServer, Resource, write_loopback_config

ATOM_LANGS = {"fr"}
CLOSED_FEED = "/feeds/closed-outlet.xml"


def load_sample_articles() -> list[dict[str, Any]]:
    return json.loads(
        resources.files("flows").joinpath("demo_site/articles.json").read_text("utf-8")
    )


def page_path(article: dict[str, Any]) -> str:
    return f"/{article['domain']}/{article['slug']}.html"


def render_page(article: dict[str, Any], related: list[dict[str, Any]], base: str) -> bytes:
    """A news page as real sites build them: menus, a cookie banner, related links, reader comments."""
    lang = article["lang"]
    direction = ' dir="rtl"' if lang == "ar" else ""
    paragraphs = "\n".join(f"      <p>{escape(p)}</p>" for p in article["paragraphs"])
    comments = "\n".join(
        f'      <div class="comment"><span class="comment-author">{escape(c["author"])}</span>'
        f'<p class="comment-text">{escape(c["text"])}</p></div>'
        for c in article.get("comments", [])
    )
    links = "\n".join(
        f'        <li><a href="{base}{page_path(r)}">{escape(r["title"])}</a></li>' for r in related
    )
    published = article["published"]
    return f"""<!DOCTYPE html>
<html lang="{lang}"{direction}>
<head>
  <meta charset="utf-8">
  <title>{escape(article["title"])} | {escape(article["outlet"])}</title>
  <meta name="author" content="{escape(article["author"])}">
  <meta property="og:title" content="{escape(article["title"])}">
  <meta property="article:published_time" content="{published}">
  <link rel="canonical" href="{base}{page_path(article)}">
</head>
<body>
  <div id="cookie-banner" class="cookie-consent">We use cookies to measure our audience and show
    partners' offers. <button>Accept all</button> <button>Settings</button></div>
  <header class="site-header">
    <a class="logo" href="{base}/{article["domain"]}/">{escape(article["outlet"])}</a>
    <nav class="main-menu"><ul>
      <li><a href="#">Home</a></li><li><a href="#">Politics</a></li><li><a href="#">Defence</a></li>
      <li><a href="#">Maroc</a></li><li><a href="#">Economy</a></li><li><a href="#">Sport</a></li>
      <li><a href="#">Culture</a></li><li><a href="#">Subscribe</a></li>
    </ul></nav>
  </header>
  <main>
    <article class="post">
      <h1 class="entry-title">{escape(article["title"])}</h1>
      <div class="byline">By <span class="author">{escape(article["author"])}</span> &middot;
        <time datetime="{published}">{published[:10]}</time></div>
      <div class="share-buttons">Share: Facebook | X | WhatsApp | Email</div>
      <div class="entry-content">
{paragraphs}
      </div>
      <div class="tags">Tags: {escape(article.get("section", "news"))}</div>
    </article>
    <aside class="related">
      <h3>Read also</h3>
      <ul>
{links}
      </ul>
    </aside>
    <section id="comments" class="comments">
      <h3>Comments</h3>
{comments}
    </section>
  </main>
  <footer class="site-footer">&copy; 2026 {escape(article["outlet"])}. All rights reserved.
    <a href="#">Privacy</a> <a href="#">Terms</a> <a href="#">Advertise</a></footer>
</body>
</html>
""".encode()


def render_rss(articles: list[dict[str, Any]], base: str, title: str) -> bytes:
    items = "\n".join(
        f"""    <item>
      <title>{escape(a["title"])}</title>
      <link>{escape(base + page_path(a) + a.get("feed_suffix", ""))}</link>
      <guid isPermaLink="false">{a["domain"]}-{a["slug"]}</guid>
      <pubDate>{format_datetime(datetime.fromisoformat(a["published"]))}</pubDate>
      <dc:creator>{escape(a["author"])}</dc:creator>
      <description>{escape(a["summary"])}</description>
    </item>"""
        for a in articles
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>{escape(title)}</title>
    <link>{base}/</link>
    <description>Latest news</description>
{items}
  </channel>
</rss>
""".encode()


def render_atom(articles: list[dict[str, Any]], base: str, title: str) -> bytes:
    entries = "\n".join(
        f"""  <entry>
    <title type="html">{escape(escape(a["title"]))}</title>
    <link rel="alternate" href="{base}{page_path(a)}"/>
    <id>tag:{a["domain"]},2026:{a["slug"]}</id>
    <published>{a["published"]}</published>
    <updated>{a["published"]}</updated>
    <author><name>{escape(a["author"])}</name></author>
    <summary>{escape(a["summary"])}</summary>
  </entry>"""
        for a in articles
    )
    updated = max((a["published"] for a in articles), default="2026-01-01T00:00:00Z")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>{escape(title)}</title>
  <id>{base}/</id>
  <updated>{updated}</updated>
{entries}
</feed>
""".encode()


def build_site(
    articles: list[dict[str, Any]], base: str
) -> tuple[dict[str, Resource], list[tuple[str, str]]]:
    """Routes of the sample site and its feeds as (path, name)."""
    routes: dict[str, Resource] = {}
    by_feed: dict[str, list[dict[str, Any]]] = {}
    for article in articles:
        by_feed.setdefault(article["feed"], []).append(article)
        siblings = [a for a in articles if a["feed"] == article["feed"] and a is not article][:3]
        routes[page_path(article)] = Resource(render_page(article, siblings, base))
    feeds = []
    for feed_id, items in sorted(by_feed.items()):
        path = f"/feeds/{feed_id}.xml"
        title = f"{items[0]['outlet']}"
        if items[0]["lang"] in ATOM_LANGS:
            routes[path] = Resource(
                render_atom(items, base, title), "application/atom+xml; charset=utf-8"
            )
        else:
            routes[path] = Resource(
                render_rss(items, base, title), "application/rss+xml; charset=utf-8"
            )
        feeds.append((path, title))
    # A wire-style feed relaying an article another outlet already published, with tracking
    # parameters on the link: the story must be stored once.
    relayed = [dict(articles[0], feed_suffix="?utm_source=rss&utm_medium=feed")]
    routes["/feeds/wire-relay.xml"] = Resource(
        render_rss(relayed, base, "Regional Wire Relay"), "application/rss+xml; charset=utf-8"
    )
    feeds.append(("/feeds/wire-relay.xml", "Regional Wire Relay"))
    feeds.append((CLOSED_FEED, "Closed Outlet (gone)"))
    return routes, feeds


def reset_workdir(workdir: Path) -> None:
    """A fresh database and outbox each time; the Prefect run history is kept for the UI."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("atlaswatch.db", "atlaswatch.db-wal", "atlaswatch.db-shm"):
        (workdir / name).unlink(missing_ok=True)
    shutil.rmtree(workdir / "outbox", ignore_errors=True)


def run_demo(workdir: Path, echo: Callable[[str], None] = print) -> dict[str, Any]:
    from flows.prefect_env import configure_prefect
    from flows.settings import load_settings

    started = time.monotonic()
    workdir = workdir.resolve()
    reset_workdir(workdir)
    articles = load_sample_articles()
    with LocalServer() as server:
        routes, feeds = build_site(articles, server.url)
        server.routes.update(routes)
        config = write_loopback_config(
            workdir,
            server.url,
            feeds,
            comment="# Written by `atlaswatch demo`: sample feeds on a local server that lives only during the demo.",
        )
        settings = load_settings(config)
        # The demo's runs land beside the regular ones, so `make ui` shows both.
        os.environ.setdefault("PREFECT_HOME", str(workdir.parent / "prefect"))
        home = configure_prefect(settings)
        echo(f"Serving {len(articles)} sample articles in {len(feeds)} feeds at {server.url}")
        echo("Starting Prefect (a temporary local server; the first start takes 10-20 s)...")
        from flows.modelstore import current_model_path, start_worker_server_with
        from flows.pipeline import poll_feeds, send_digest
        from flows.prefect_env import direct_flow_runs
        from storage import open_database

        start_worker_server_with(current_model_path(settings, open_database(settings.storage.path)))
        with direct_flow_runs():
            poll = poll_feeds(str(config))
            digest = send_digest(str(config))
    _print_story(settings, poll, digest, echo)
    echo(
        f"\nDone in {time.monotonic() - started:.0f} s. See the runs and their summaries in the Prefect UI:\n"
        f"  make ui      (PREFECT_HOME={home}; then open http://127.0.0.1:4200)"
    )
    return {"poll": poll, "digest": digest, "config": str(config)}


def _print_story(settings: Any, poll: dict, digest: dict, echo: Callable[[str], None]) -> None:
    from storage import open_database
    from storage.articles import article_overview

    db = open_database(settings.storage.path)
    echo(
        f"\nStored {poll['stored']} article(s) from {poll['feeds']} feed(s); {poll['failed']} feed(s) failed."
    )
    rows = article_overview(db)
    for row in rows:
        tag = "RELEVANT" if row["relevant"] else "-"
        extra = f" partners={row['partners']} topics={row['topics']}" if row["relevant"] else ""
        echo(
            f"  [{row['lang'] or '??'}] {tag:<8} {row['score'] or 0:.2f} {row['title'][:70]}{extra}"
        )
    for url, info in poll["per_feed"].items():
        if info["outcome"] == "failed":
            echo(f"  feed failed as expected: {url}: {info['error']}")
    if digest.get("path"):
        echo(
            f"\nDigest: {digest['stories']} stor(ies) written to {digest['path']} "
            f"(and {Path(digest['path']).with_suffix('.html').name} beside it to open in a browser)"
        )
    else:
        echo("\nDigest: nothing to send.")
