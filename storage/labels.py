"""Analysts' labels: corrections of the classifier, the extra training data for retraining."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlite_utils

from storage.database import transaction


def add_label(
    db: sqlite_utils.Database,
    *,
    relevant: bool,
    partners: Sequence[str],
    topics: Sequence[str],
    at: str,
    article_id: str | None = None,
    title: str = "",
    text: str = "",
    lang: str = "",
    source: str = "analyst",
) -> int:
    """Label a stored article (its title and text are copied) or an external text."""
    if article_id is not None:
        row = db.execute(
            "SELECT title, text, lang FROM articles WHERE id = ?", [article_id]
        ).fetchone()
        if row is None:
            raise KeyError(f"no stored article with id {article_id}")
        title, text, lang = row[0] or "", row[1] or "", row[2] or lang
    with transaction(db):
        cursor = db.execute(
            """INSERT INTO labels (article_id, title, text, lang, relevant, partners, topics, source, at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                article_id,
                title,
                text,
                lang,
                int(relevant),
                json.dumps(sorted(set(partners))),
                json.dumps(sorted(set(topics))),
                source,
                at,
            ],
        )
        return int(cursor.lastrowid)


def training_examples(db: sqlite_utils.Database) -> list[dict]:
    """The newest label of each article (and every external label) as training examples."""
    rows = db.query(
        """SELECT * FROM labels WHERE article_id IS NULL
              OR id IN (SELECT MAX(id) FROM labels WHERE article_id IS NOT NULL GROUP BY article_id)
           ORDER BY id"""
    )
    return [
        {
            "id": f"label-{row['id']}",
            "title": row["title"] or "",
            "text": row["text"] or "",
            "lang": row["lang"] or "",
            "relevant": bool(row["relevant"]),
            "partners": json.loads(row["partners"]),
            "topics": json.loads(row["topics"]),
        }
        for row in rows
    ]
