"""The feed list and the overall status, as text for the CLI."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlite_utils

from flows.guard import BlockedURL, check_url
from flows.modelstore import current_model_path
from flows.settings import Settings
from storage import feeds as feed_store
from storage.articles import article_counts
from storage.runs import last_runs


class FeedURLError(ValueError):
    """A feed URL that atlaswatch will not poll."""


def sync_configured(db: sqlite_utils.Database, settings: Settings) -> int:
    return feed_store.sync_feeds(db, ((f.url, f.name) for f in settings.feeds), datetime.now(UTC))


def add_feeds(db: sqlite_utils.Database, feeds: Iterable[tuple[str, str]]) -> int:
    feeds = list(feeds)
    for url, _ in feeds:
        try:
            check_url(url)
        except BlockedURL as error:
            raise FeedURLError(str(error)) from error
    return feed_store.sync_feeds(db, feeds, datetime.now(UTC))


def _state(feed: dict) -> str:
    if feed["status"] != "active":
        return feed["status"]
    if feed["error_count"]:
        return f"failing x{feed['error_count']}"
    return "ok" if feed["last_success_at"] else "new"


def feed_table(db: sqlite_utils.Database) -> str:
    rows = feed_store.list_feeds(db)
    if not rows:
        return "No feeds. Add some in the config's [[feeds]], or with `atlaswatch feeds add URL`."
    lines = []
    for feed in rows:
        lines.append(f"{_state(feed):<12} {feed['name'] or feed['url']}")
        lines.append(f"             {feed['url']}")
        lines.append(
            f"             last success: {feed['last_success_at'] or 'never'}; next poll: "
            f"{feed['next_poll_at'] or 'now'}; articles stored: {feed['articles_stored']}"
        )
        if feed["last_error"]:
            lines.append(
                f"             last error ({feed['last_error_kind']}): {feed['last_error']}"
            )
        if feed["note"]:
            lines.append(f"             note: {feed['note']}")
    return "\n".join(lines)


def status_text(db: sqlite_utils.Database, settings: Settings) -> str:
    counts = article_counts(db)
    model = current_model_path(settings, db)
    lines = [
        f"Configuration: {settings.source}",
        f"Database: {settings.storage.path}",
        f"Articles: {counts['articles']} stored, {counts['classified']} classified, {counts['relevant']} relevant, "
        f"{counts['pending_digest']} waiting for the next digest",
        f"Model: {model or 'the bundled model'}",
    ]
    for kind, run in last_runs(db).items():
        lines.append(f"Last {kind}: {run['finished_at']} ({run['status']})")
    failing = feed_store.feeds_needing_attention(db)
    if failing:
        lines.append(f"Feeds needing attention: {len(failing)} (see `atlaswatch feeds`)")
    return "\n".join(lines)
