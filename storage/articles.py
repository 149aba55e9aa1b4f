"""Articles, their classifications, and the queue of relevant articles waiting for a digest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlite_utils

ARTICLE_COLUMNS = (
    "id",
    "url",
    "feed_url",
    "guid",
    "dedupe_key",
    "title",
    "author",
    "published",
    "fetched_at",
    "lang",
    "text",
    "summary",
    "extraction_status",
    "extraction_note",
    "fingerprint",
    "cluster_id",
)
# Ids per statement: well under SQLite's limit on bound variables.
IN_CHUNK = 500


def _in_chunks(values: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """`values` a chunk at a time, each with its "?,?,..." placeholders for an IN (...) list."""
    for start in range(0, len(values), IN_CHUNK):
        chunk = list(values[start : start + IN_CHUNK])
        yield chunk, ",".join("?" * len(chunk))


def article_id(canonical_url: str) -> str:
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:24]


def clean_text(value: Any) -> Any:
    """SQLite and FTS choke on NUL and lone surrogates; one bad character must not sink a batch."""
    if not isinstance(value, str):
        return value
    value = value.replace("\x00", "")
    return value.encode("utf-8", "replace").decode("utf-8")


def known_ids(
    db: sqlite_utils.Database, ids: Iterable[str], dedupe_keys: Iterable[str] = ()
) -> set[str]:
    """Which of these article ids or dedupe keys are stored already."""
    ids, dedupe_keys = list(ids), list(dedupe_keys)
    found: set[str] = set()
    for column, values in (("id", ids), ("dedupe_key", dedupe_keys)):
        for chunk, marks in _in_chunks(values):
            rows = db.execute(f"SELECT {column} FROM articles WHERE {column} IN ({marks})", chunk)
            found.update(row[0] for row in rows)
    return found


def insert_articles(db: sqlite_utils.Database, articles: Sequence[Mapping[str, Any]]) -> list[str]:
    """Insert articles not stored yet (by id); returns the ids actually inserted. Caller holds the transaction."""
    inserted = []
    columns = ", ".join(ARTICLE_COLUMNS)
    marks = ", ".join("?" * len(ARTICLE_COLUMNS))
    for article in articles:
        values = [clean_text(article.get(column)) for column in ARTICLE_COLUMNS]
        cursor = db.execute(f"INSERT OR IGNORE INTO articles ({columns}) VALUES ({marks})", values)
        if cursor.rowcount:
            inserted.append(article["id"])
    return inserted


def save_classifications(db: sqlite_utils.Database, rows: Iterable[Mapping[str, Any]]) -> int:
    """Upsert classifications (article_id, model_version, relevant, score, partners, topics, evidence)."""
    count = 0
    for row in rows:
        db.execute(
            """INSERT INTO classifications
                   (article_id, model_version, relevant, score, partners, topics, evidence, classified_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(article_id) DO UPDATE SET model_version = excluded.model_version,
                   relevant = excluded.relevant, score = excluded.score, partners = excluded.partners,
                   topics = excluded.topics, evidence = excluded.evidence,
                   classified_at = excluded.classified_at""",
            [
                row["article_id"],
                row["model_version"],
                int(bool(row["relevant"])),
                float(row["score"]),
                json.dumps(list(row.get("partners") or [])),
                json.dumps(list(row.get("topics") or [])),
                json.dumps(row.get("evidence") or {}, ensure_ascii=False),
                row["classified_at"],
            ],
        )
        count += 1
    return count


def article_texts(db: sqlite_utils.Database, ids: Sequence[str]) -> list[dict]:
    """id, title and text of these articles."""
    found: list[dict] = []
    for chunk, marks in _in_chunks(ids):
        found.extend(db.query(f"SELECT id, title, text FROM articles WHERE id IN ({marks})", chunk))
    return found


def set_evidence(db: sqlite_utils.Database, article: str, evidence: Mapping[str, Any]) -> None:
    db.execute(
        "UPDATE classifications SET evidence = ? WHERE article_id = ?",
        [json.dumps(evidence, ensure_ascii=False), article],
    )


def set_fingerprint(db: sqlite_utils.Database, article: str, fingerprint: str) -> None:
    db.execute("UPDATE articles SET fingerprint = ? WHERE id = ?", [fingerprint, article])


def set_language(db: sqlite_utils.Database, article: str, lang: str) -> None:
    db.execute("UPDATE articles SET lang = ? WHERE id = ?", [lang, article])


def unclassified_articles(db: sqlite_utils.Database, limit: int = 5000) -> list[dict]:
    """Stored articles that no model has classified yet (e.g. the model file was refused last run)."""
    return list(
        db.query(
            """SELECT a.* FROM articles a LEFT JOIN classifications c ON c.article_id = a.id
               WHERE c.article_id IS NULL ORDER BY a.fetched_at LIMIT ?""",
            [limit],
        )
    )


def _decode(row: dict) -> dict:
    for key in ("partners", "topics"):
        row[key] = json.loads(row[key]) if row.get(key) else []
    row["evidence"] = json.loads(row["evidence"]) if row.get("evidence") else {}
    if "relevant" in row and row["relevant"] is not None:
        row["relevant"] = bool(row["relevant"])
    return row


def pending_digest_items(db: sqlite_utils.Database) -> list[dict]:
    """Relevant articles not yet in a digest the mail server accepted, oldest first."""
    rows = db.query(
        """SELECT a.id, a.url, a.title, a.author, a.published, a.fetched_at, a.lang, a.summary,
                  a.text, a.cluster_id, a.feed_url, f.name AS feed_name,
                  c.score, c.partners, c.topics, c.evidence, c.model_version, c.relevant
           FROM articles a JOIN classifications c ON c.article_id = a.id
           LEFT JOIN feeds f ON f.url = a.feed_url
           WHERE c.relevant = 1 AND a.digested_at IS NULL
           ORDER BY COALESCE(a.published, a.fetched_at), a.id"""
    )
    return [_decode(dict(row)) for row in rows]


def mark_digested(db: sqlite_utils.Database, ids: Sequence[str], digest_id: int, at: str) -> None:
    """Caller holds the transaction that also marks the digest sent."""
    for chunk, marks in _in_chunks(ids):
        db.execute(
            f"UPDATE articles SET digested_at = ?, digest_id = ? WHERE id IN ({marks})",
            [at, digest_id, *chunk],
        )


def classified_articles(db: sqlite_utils.Database, ids: Sequence[str]) -> list[dict]:
    """The articles `ids` with their classifications, oldest first (undated ones before)."""
    rows = [
        dict(row)
        for chunk, marks in _in_chunks(ids)
        for row in db.query(
            f"""SELECT a.id, a.url, a.title, a.lang, a.feed_url, a.extraction_status,
                       a.published, c.relevant, c.score, c.partners, c.topics, c.evidence
                FROM articles a LEFT JOIN classifications c ON c.article_id = a.id
                WHERE a.id IN ({marks})""",
            chunk,
        )
    ]
    rows.sort(key=lambda row: (row["published"] is not None, row["published"] or "", row["id"]))
    return [_decode(row) for row in rows]


def search_articles(db: sqlite_utils.Database, query: str, limit: int = 20) -> list[dict]:
    """Full-text search on title and text, best match first."""
    rows = db.query(
        """SELECT a.id, a.url, a.title, a.published, a.lang FROM articles_fts
           JOIN articles a ON a.rowid = articles_fts.rowid
           WHERE articles_fts MATCH ? ORDER BY rank LIMIT ?""",
        [query, limit],
    )
    return [dict(row) for row in rows]


def article_counts(db: sqlite_utils.Database) -> dict[str, int]:
    row = db.execute(
        """SELECT COUNT(*), SUM(c.article_id IS NOT NULL), SUM(c.relevant = 1),
                  SUM(c.relevant = 1 AND a.digested_at IS NULL)
           FROM articles a LEFT JOIN classifications c ON c.article_id = a.id"""
    ).fetchone()
    total, classified, relevant, pending = (value or 0 for value in row)
    return {
        "articles": total,
        "classified": classified,
        "relevant": relevant,
        "pending_digest": pending,
    }


def article_overview(db: sqlite_utils.Database) -> list[dict]:
    """Every article with its tags, relevant first: what the demo prints."""
    rows = db.query(
        """SELECT a.id, a.title, a.lang, a.extraction_status, c.relevant, c.partners, c.topics, c.score, c.evidence
           FROM articles a LEFT JOIN classifications c ON c.article_id = a.id
           ORDER BY c.relevant DESC, a.lang, a.title"""
    )
    return [_decode(dict(row)) for row in rows]


def recent_fingerprints(
    db: sqlite_utils.Database, since_iso: str, up_to_row: int | None = None
) -> list[dict]:
    """Articles fetched at or after `since_iso` (and stored no later than row `up_to_row`) that
    carry a fingerprint, oldest first: id, fingerprint, cluster_id, published, fetched_at (what
    story clustering compares against)."""
    rows = db.query(
        """SELECT id, fingerprint, cluster_id, published, fetched_at FROM articles
           WHERE fetched_at >= ? AND rowid <= ? AND fingerprint IS NOT NULL AND fingerprint != ''
           ORDER BY fetched_at, id""",
        [since_iso, last_article_row(db) if up_to_row is None else up_to_row],
    )
    return [dict(row) for row in rows]


def last_article_row(db: sqlite_utils.Database) -> int:
    """The row number of the article stored last (0 for none): later ones have higher numbers."""
    return db.execute("SELECT COALESCE(MAX(rowid), 0) FROM articles").fetchone()[0]


def fingerprints_stored_between(
    db: sqlite_utils.Database, after_row: int, up_to_row: int
) -> list[dict]:
    """Articles stored after row `after_row` up to row `up_to_row` that carry a fingerprint, in
    storing order: id, fingerprint, cluster_id."""
    rows = db.query(
        """SELECT id, fingerprint, cluster_id FROM articles
           WHERE rowid > ? AND rowid <= ? AND fingerprint IS NOT NULL AND fingerprint != ''
           ORDER BY rowid""",
        [after_row, up_to_row],
    )
    return [dict(row) for row in rows]
