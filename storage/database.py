"""Opening the database, its migrations, and write transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

BUSY_TIMEOUT_MS = 30_000


class StorageError(Exception):
    """The database cannot be opened or migrated."""


def open_database(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database; WAL, busy timeout, foreign keys on."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as error:
        raise StorageError(
            f"cannot open database {path}: {error}; check the [storage] path"
        ) from error
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    try:
        db.enable_wal()
        # In WAL mode NORMAL keeps the file consistent through a crash or a kill; only the last
        # commits may be lost to a power cut. FULL would sync the disk on every feed's commit.
        db.execute("PRAGMA synchronous = NORMAL")
        migrate(db)
    except sqlite3.DatabaseError as error:
        raise StorageError(
            f"{path} is not a usable atlaswatch database ({error}); move it aside to start a new one"
        ) from error
    return db


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction, taken IMMEDIATE so that two writers queue instead of deadlocking."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _v1_initial(db: sqlite_utils.Database) -> None:
    db["feeds"].create(
        {
            "url": str,
            "name": str,
            "added_at": str,
            "status": str,
            "note": str,
            "etag": str,
            "last_modified": str,
            "body_hash": str,
            "last_polled_at": str,
            "last_success_at": str,
            "next_poll_at": str,
            "error_count": int,
            "failure_score": float,
            "last_error": str,
            "last_error_kind": str,
            "last_status": int,
            "entries_seen": int,
            "articles_stored": int,
        },
        pk="url",
        defaults={
            "status": "active",
            "error_count": 0,
            "failure_score": 0.0,
            "entries_seen": 0,
            "articles_stored": 0,
        },
        not_null={"status"},
    )
    db["articles"].create(
        {
            "id": str,
            "url": str,
            "feed_url": str,
            "guid": str,
            "dedupe_key": str,
            "title": str,
            "author": str,
            "published": str,
            "fetched_at": str,
            "lang": str,
            "text": str,
            "summary": str,
            "extraction_status": str,
            "extraction_note": str,
            "fingerprint": str,
            "cluster_id": str,
            "digested_at": str,
            "digest_id": int,
        },
        pk="id",
    )
    db["articles"].create_index(["feed_url"])
    db["articles"].create_index(["dedupe_key"])
    db["articles"].create_index(["cluster_id"])
    db["articles"].create_index(["digested_at"])
    db["articles"].enable_fts(["title", "text"], create_triggers=True, tokenize="unicode61")
    db["classifications"].create(
        {
            "article_id": str,
            "model_version": str,
            "relevant": int,
            "score": float,
            "partners": str,
            "topics": str,
            "evidence": str,
            "classified_at": str,
        },
        pk="article_id",
        foreign_keys=[("article_id", "articles", "id")],
    )
    db["labels"].create(
        {
            "id": int,
            "article_id": str,
            "title": str,
            "text": str,
            "lang": str,
            "relevant": int,
            "partners": str,
            "topics": str,
            "source": str,
            "at": str,
        },
        pk="id",
    )
    db["digests"].create(
        {
            "id": int,
            "created_at": str,
            "sent_at": str,
            "status": str,
            "transport": str,
            "message_id": str,
            "recipients": str,
            "refused": str,
            "items": str,
            "subject": str,
            "path": str,
            "error": str,
        },
        pk="id",
    )
    db["models"].create(
        {
            "version": str,
            "path": str,
            "sha256": str,
            "metrics": str,
            "created_at": str,
            "promoted_at": str,
            "note": str,
        },
        pk="version",
    )
    db["runs"].create(
        {
            "id": int,
            "kind": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "summary": str,
        },
        pk="id",
    )


def _v2_recent_index(db: sqlite_utils.Database) -> None:
    """Story clustering reads the last week's fingerprints on every poll."""
    db["articles"].create_index(["fetched_at"], if_not_exists=True)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1_initial, _v2_recent_index]


def migrate(db: sqlite_utils.Database) -> int:
    """Apply the migrations the file has not seen yet; returns the schema version."""
    with transaction(db):
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
    return len(MIGRATIONS)
