"""A short record of each poll, digest and retrain run, for `atlaswatch status`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlite_utils

from storage.database import transaction


def record_run(
    db: sqlite_utils.Database,
    kind: str,
    started_at: str,
    finished_at: str,
    status: str,
    summary: Mapping[str, Any],
) -> None:
    with transaction(db):
        db.execute(
            "INSERT INTO runs (kind, started_at, finished_at, status, summary) VALUES (?, ?, ?, ?, ?)",
            [
                kind,
                started_at,
                finished_at,
                status,
                json.dumps(summary, ensure_ascii=False, default=str),
            ],
        )


def last_runs(db: sqlite_utils.Database) -> dict[str, dict]:
    """The newest run of each kind."""
    rows = db.query(
        "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY kind) ORDER BY kind"
    )
    return {row["kind"]: {**row, "summary": json.loads(row["summary"])} for row in rows}
