"""Storage on real SQLite files."""

import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from storage import feeds as feed_store
from storage import open_database, transaction
from storage.articles import (
    IN_CHUNK,
    article_id,
    classified_articles,
    insert_articles,
    known_ids,
    mark_digested,
    pending_digest_items,
    save_classifications,
    search_articles,
    unclassified_articles,
)
from storage.database import StorageError
from storage.digests import create_digest, mark_failed, mark_sent

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def article(n: int, **extra) -> dict:
    url = f"https://o.example/{n}"
    return {
        "id": article_id(url),
        "url": url,
        "feed_url": "https://o.example/feed",
        "title": f"Title {n}",
        "text": f"Body of article {n} about Rabat",
        "fetched_at": NOW.isoformat(),
        "dedupe_key": f"k{n}",
        "extraction_status": "ok",
        **extra,
    }


def classification(a: dict, relevant: bool = True) -> dict:
    return {
        "article_id": a["id"],
        "model_version": "m1",
        "relevant": relevant,
        "score": 0.9 if relevant else 0.1,
        "partners": ["US"] if relevant else [],
        "topics": ["exercise"] if relevant else [],
        "evidence": {},
        "classified_at": NOW.isoformat(),
    }


def test_migrations_are_idempotent(tmp_path):
    path = tmp_path / "a.db"
    open_database(path)
    db = open_database(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="move it aside"):
        open_database(path)


def test_insert_is_idempotent_and_known_ids(tmp_path):
    db = open_database(tmp_path / "a.db")
    rows = [article(1), article(2)]
    with transaction(db):
        assert len(insert_articles(db, rows)) == 2
    with transaction(db):
        assert insert_articles(db, rows) == []
    assert known_ids(db, [rows[0]["id"], "nope"], ["k2"]) == {rows[0]["id"], "k2"}


def test_bad_characters_do_not_sink_the_batch(tmp_path):
    db = open_database(tmp_path / "a.db")
    rows = [article(1, title="NUL\x00inside", text="lone \ud800 surrogate"), article(2)]
    with transaction(db):
        assert len(insert_articles(db, rows)) == 2
    stored = db.execute("SELECT title FROM articles WHERE id = ?", [rows[0]["id"]]).fetchone()[0]
    assert stored == "NULinside"


def test_full_text_search(tmp_path):
    db = open_database(tmp_path / "a.db")
    with transaction(db):
        insert_articles(db, [article(1, title="African Lion drills in Tan-Tan"), article(2)])
    hits = search_articles(db, "lion")
    assert [hit["title"] for hit in hits] == ["African Lion drills in Tan-Tan"]


def test_a_failed_transaction_leaves_nothing(tmp_path):
    db = open_database(tmp_path / "a.db")
    with pytest.raises(RuntimeError), transaction(db):
        insert_articles(db, [article(1)])
        raise RuntimeError("crash between writes")
    assert db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 0


def test_digest_items_stay_pending_until_marked_sent(tmp_path):
    db = open_database(tmp_path / "a.db")
    rows = [article(1), article(2), article(3)]
    with transaction(db):
        insert_articles(db, rows)
        save_classifications(
            db, [classification(rows[0]), classification(rows[1]), classification(rows[2], False)]
        )
    pending = {item["id"] for item in pending_digest_items(db)}
    assert pending == {rows[0]["id"], rows[1]["id"]}
    digest = create_digest(db, sorted(pending), "s", ["a@b"], NOW.isoformat())
    mark_failed(db, digest, "server said no")
    assert {item["id"] for item in pending_digest_items(db)} == pending
    mark_sent(db, digest, at=NOW.isoformat(), transport="smtp", message_id="<m@x>")
    assert pending_digest_items(db) == []


def test_unclassified_articles_are_found(tmp_path):
    db = open_database(tmp_path / "a.db")
    rows = [article(1), article(2)]
    with transaction(db):
        insert_articles(db, rows)
        save_classifications(db, [classification(rows[0])])
    assert [a["id"] for a in unclassified_articles(db)] == [rows[1]["id"]]
    with transaction(db):
        mark_digested(db, [rows[0]["id"]], 1, NOW.isoformat())


def test_feed_backoff_and_recovery(tmp_path):
    db = open_database(tmp_path / "a.db")
    url = "https://o.example/feed"
    feed_store.sync_feeds(db, [(url, "O")], NOW)
    interval = timedelta(minutes=30)
    delays = []
    for n in range(1, 10):
        row = feed_store.record_failure(
            db, url, NOW, interval, feed_store.FeedFailure("timeout", "slow")
        )
        delays.append(datetime.fromisoformat(row["next_poll_at"]) - NOW)
        assert row["error_count"] == n and row["status"] == "active"
    assert delays[:2] == [interval, interval]
    assert delays[2] == interval * 2 and delays[3] == interval * 4
    assert delays[-1] == timedelta(days=1)
    assert feed_store.feeds_needing_attention(db)[0]["url"] == url
    with transaction(db):
        feed_store.record_success(db, url, NOW, interval, status=200, etag='"e"')
    row = feed_store.get_feed(db, url)
    assert (
        row["error_count"] == 0
        and row["etag"] == '"e"'
        and not feed_store.feeds_needing_attention(db)
    )


def test_gone_retires_the_feed_with_a_note_and_retry_after_is_honoured(tmp_path):
    db = open_database(tmp_path / "a.db")
    feed_store.sync_feeds(db, [("https://o.example/a", "A"), ("https://o.example/b", "B")], NOW)
    row = feed_store.record_failure(
        db,
        "https://o.example/a",
        NOW,
        timedelta(minutes=30),
        feed_store.FeedFailure("gone", "410 Gone"),
    )
    assert row["status"] == "retired" and "410" in row["note"]
    assert [f["url"] for f in feed_store.due_feeds(db, NOW + timedelta(days=2))] == [
        "https://o.example/b"
    ]
    row = feed_store.record_failure(
        db,
        "https://o.example/b",
        NOW,
        timedelta(minutes=30),
        feed_store.FeedFailure("rate_limited", "429", retry_after=7200),
    )
    assert datetime.fromisoformat(row["next_poll_at"]) - NOW == timedelta(hours=2)


def _writer(path: str, start: int, count: int, queue) -> None:
    db = open_database(path)
    try:
        for n in range(start, start + count):
            with transaction(db):
                insert_articles(db, [article(n % 150)])
        queue.put("ok")
    except Exception as error:  # reported to the parent, which fails the test
        queue.put(repr(error))


def test_two_writers_at_once_never_lock_or_duplicate(tmp_path):
    path = str(tmp_path / "a.db")
    open_database(path)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_writer, args=(path, start, 300, queue)) for start in (0, 75)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert results == ["ok", "ok"]
    db = open_database(path)
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT url) FROM articles").fetchone() == (150, 150)


def test_classified_articles_come_back_all_oldest_first_past_sqlites_variable_limit(tmp_path):
    db = open_database(tmp_path / "a.db")
    # This build allows 250,000 variables a statement; others allow 32,766 or, before 3.32, 999.
    db.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    rows = [
        article(n, published=None if n % 10 == 0 else (NOW - timedelta(minutes=n)).isoformat())
        for n in range(2 * IN_CHUNK + 7)
    ]
    with transaction(db):
        insert_articles(db, rows)
        save_classifications(
            db, [classification(a, relevant=n % 2 == 0) for n, a in enumerate(rows)]
        )
    found = classified_articles(db, [a["id"] for a in reversed(rows)])
    undated = sorted(a["id"] for a in rows if a["published"] is None)
    dated = [a["id"] for a in sorted(rows, key=lambda a: a["published"] or "") if a["published"]]
    assert [a["id"] for a in found] == undated + dated
    partners = {a["id"]: ["US"] if n % 2 == 0 else [] for n, a in enumerate(rows)}
    assert all(a["partners"] == partners[a["id"]] for a in found)
