"""The models table: every trained model, and which one is promoted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlite_utils

from storage.database import transaction


def record_model(
    db: sqlite_utils.Database,
    meta: Mapping[str, Any],
    path: str,
    at: str,
    *,
    promote: bool,
    note: str = "",
) -> None:
    with transaction(db):
        db.execute(
            """INSERT OR REPLACE INTO models (version, path, sha256, metrics, created_at, promoted_at, note)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [
                meta["version"],
                path,
                meta["sha256"],
                json.dumps(meta.get("metrics", {})),
                at,
                at if promote else None,
                note,
            ],
        )


def promoted_model(db: sqlite_utils.Database) -> dict | None:
    rows = list(
        db.query(
            "SELECT * FROM models WHERE promoted_at IS NOT NULL ORDER BY promoted_at DESC, rowid DESC LIMIT 1"
        )
    )
    return rows[0] if rows else None


def list_models(db: sqlite_utils.Database) -> list[dict]:
    return list(db.query("SELECT * FROM models ORDER BY created_at DESC"))
