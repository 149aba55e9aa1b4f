"""Digest records: created before sending, marked sent only once the server accepted them."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlite_utils

from storage.articles import mark_digested
from storage.database import transaction


def create_digest(
    db: sqlite_utils.Database,
    item_ids: Sequence[str],
    subject: str,
    recipients: Sequence[str],
    at: str,
) -> int:
    with transaction(db):
        cursor = db.execute(
            "INSERT INTO digests (created_at, status, subject, recipients, items) VALUES (?, 'pending', ?, ?, ?)",
            [at, subject, json.dumps(list(recipients)), json.dumps(list(item_ids))],
        )
        return int(cursor.lastrowid)


def mark_sent(
    db: sqlite_utils.Database,
    digest_id: int,
    *,
    at: str,
    transport: str,
    message_id: str,
    path: str | None = None,
    refused: dict[str, str] | None = None,
) -> None:
    """The digest and its articles are marked together, so a crash leaves both pending or both sent."""
    with transaction(db):
        row = db.execute("SELECT items FROM digests WHERE id = ?", [digest_id]).fetchone()
        db.execute(
            """UPDATE digests SET status = 'sent', sent_at = ?, transport = ?, message_id = ?, path = ?,
                   refused = ?, error = NULL WHERE id = ?""",
            [at, transport, message_id, path, json.dumps(refused or {}), digest_id],
        )
        mark_digested(db, json.loads(row[0]), digest_id, at)


def mark_failed(db: sqlite_utils.Database, digest_id: int, error: str) -> None:
    with transaction(db):
        db.execute(
            "UPDATE digests SET status = 'failed', error = ? WHERE id = ?", [error, digest_id]
        )


def list_digests(db: sqlite_utils.Database, limit: int = 20) -> list[dict]:
    return list(db.query("SELECT * FROM digests ORDER BY id DESC LIMIT ?", [limit]))
