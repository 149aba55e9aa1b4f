"""The feeds table: the polled list, conditional-GET validators and each feed's health."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from storage.database import transaction

BACKOFF_AFTER = 3
MAX_BACKOFF = timedelta(days=1)

# How much one failure of each kind weighs in the failure score; a transient
# server hiccup matters less than a feed that no longer exists.
FAILURE_WEIGHTS = {
    "dns": 1.0,
    "connect": 0.5,
    "timeout": 0.5,
    "tls": 1.0,
    "http": 1.0,
    "http_server": 0.5,
    "rate_limited": 0.25,
    "too_large": 1.0,
    "not_feed": 1.5,
    "parse": 1.5,
    "blocked": 2.0,
    "redirects": 1.0,
    "empty": 1.0,
    "gone": 3.0,
}


@dataclass(frozen=True)
class FeedFailure:
    kind: str
    message: str
    retry_after: float | None = None


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def sync_feeds(db: sqlite_utils.Database, feeds: Iterable[tuple[str, str]], now: datetime) -> int:
    """Add configured feeds not yet stored (url, name); returns how many were added."""
    added = 0
    with transaction(db):
        for url, name in feeds:
            cursor = db.execute(
                "INSERT OR IGNORE INTO feeds (url, name, added_at, status, next_poll_at)"
                " VALUES (?, ?, ?, 'active', ?)",
                [url, name or url, iso(now), iso(now)],
            )
            added += cursor.rowcount
    return added


def list_feeds(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT * FROM feeds ORDER BY name COLLATE NOCASE, url"))


def get_feed(db: sqlite_utils.Database, url: str) -> dict | None:
    rows = list(db.query("SELECT * FROM feeds WHERE url = ?", [url]))
    return rows[0] if rows else None


def due_feeds(
    db: sqlite_utils.Database,
    now: datetime,
    urls: Iterable[str] | None = None,
    *,
    ignore_schedule: bool = False,
) -> list[dict]:
    """Active feeds whose next poll time has come (every active one when ignoring the schedule)."""
    rows = db.query(
        "SELECT * FROM feeds WHERE status = 'active' AND (? OR next_poll_at IS NULL OR next_poll_at <= ?)"
        " ORDER BY url",
        [int(ignore_schedule), iso(now)],
    )
    wanted = set(urls) if urls is not None else None
    return [row for row in rows if wanted is None or row["url"] in wanted]


def backoff_delay(error_count: int, interval: timedelta) -> timedelta:
    """The regular interval until BACKOFF_AFTER failures in a row, then doubling, capped at a day."""
    if error_count < BACKOFF_AFTER:
        return interval
    return min(interval * (2 ** (error_count - BACKOFF_AFTER + 1)), MAX_BACKOFF)


def record_success(
    db: sqlite_utils.Database,
    url: str,
    now: datetime,
    interval: timedelta,
    *,
    status: int,
    etag: str | None = None,
    last_modified: str | None = None,
    body_hash: str | None = None,
    entries_seen: int = 0,
    articles_stored: int = 0,
) -> None:
    """A poll that reached the feed: reset its failures; keep validators when a 304 sent none."""
    db.execute(
        """UPDATE feeds SET last_polled_at = :now, last_success_at = :now, next_poll_at = :next,
               error_count = 0, failure_score = 0, last_error = NULL, last_error_kind = NULL,
               last_status = :status,
               etag = COALESCE(:etag, etag), last_modified = COALESCE(:last_modified, last_modified),
               body_hash = COALESCE(:body_hash, body_hash),
               entries_seen = entries_seen + :entries, articles_stored = articles_stored + :stored
           WHERE url = :url""",
        {
            "now": iso(now),
            "next": iso(now + interval),
            "status": status,
            "etag": etag,
            "last_modified": last_modified,
            "body_hash": body_hash,
            "entries": entries_seen,
            "stored": articles_stored,
            "url": url,
        },
    )


def record_failure(
    db: sqlite_utils.Database, url: str, now: datetime, interval: timedelta, failure: FeedFailure
) -> dict:
    """Count a failure, schedule the next try with backoff (or Retry-After); returns the new row."""
    with transaction(db):
        row = get_feed(db, url) or {}
        errors = int(row.get("error_count") or 0) + 1
        delay = backoff_delay(errors, interval)
        if failure.retry_after is not None:
            delay = max(delay, min(timedelta(seconds=failure.retry_after), MAX_BACKOFF))
        status = "retired" if failure.kind == "gone" else row.get("status", "active")
        note = (
            f"retired on {iso(now)}: {failure.message}" if status == "retired" else row.get("note")
        )
        db.execute(
            """UPDATE feeds SET last_polled_at = ?, next_poll_at = ?, error_count = ?,
                   failure_score = COALESCE(failure_score, 0) + ?, last_error = ?, last_error_kind = ?,
                   status = ?, note = ?
               WHERE url = ?""",
            [
                iso(now),
                iso(now + delay),
                errors,
                FAILURE_WEIGHTS.get(failure.kind, 1.0),
                failure.message,
                failure.kind,
                status,
                note,
                url,
            ],
        )
        return get_feed(db, url) or {}


def move_feed(db: sqlite_utils.Database, old_url: str, new_url: str, now: datetime) -> None:
    """A permanent redirect: polling continues at new_url; the old row stays, marked moved, so a
    config that still lists the old address does not bring it back."""
    with transaction(db):
        db.execute(
            """INSERT OR IGNORE INTO feeds (url, name, added_at, status, etag, last_modified, body_hash,
                   last_polled_at, last_success_at, next_poll_at, error_count, failure_score, last_status,
                   entries_seen, articles_stored)
               SELECT ?, name, ?, 'active', etag, last_modified, body_hash, last_polled_at, last_success_at,
                   next_poll_at, 0, 0, last_status, entries_seen, articles_stored
               FROM feeds WHERE url = ?""",
            [new_url, iso(now), old_url],
        )
        db.execute(
            "UPDATE feeds SET status = 'moved', note = ? WHERE url = ?",
            [
                f"moved permanently to {new_url} on {iso(now)}; polling continues there (update your config)",
                old_url,
            ],
        )
        db.execute("UPDATE articles SET feed_url = ? WHERE feed_url = ?", [new_url, old_url])


def feeds_needing_attention(db: sqlite_utils.Database) -> list[dict]:
    """Feeds failing right now or retired: what the poll summary and digest footer list."""
    return list(
        db.query(
            "SELECT * FROM feeds WHERE error_count > 0 OR status NOT IN ('active', 'moved')"
            " ORDER BY failure_score DESC, url"
        )
    )
