"""The `classify` contract: JSON Lines in, one JSON object per line out, errors on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

BATCH = 256
OUTPUT_KEYS = ("relevant", "score", "partners", "topics", "lang")


class ClassifyInputError(Exception):
    """The input is not JSON Lines of objects with a string `text`."""


def read_requests(source: TextIO) -> list[dict[str, Any]]:
    """All requests, validated before anything is classified, so bad input writes no partial output."""
    requests, problems = [], []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"line {number}: not JSON ({error.msg})")
            continue
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            problems.append(f'line {number}: expected an object with a string "text"')
            continue
        for key in ("title", "lang"):
            if item.get(key) is not None and not isinstance(item[key], str):
                problems.append(f'line {number}: "{key}" must be a string')
        requests.append(item)
    if problems:
        shown = "\n".join(problems[:20]) + (
            f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        )
        raise ClassifyInputError(
            f"{len(problems)} bad input line(s); nothing was classified:\n{shown}"
        )
    return requests


def classify_lines(
    model: Any, requests: Iterable[dict[str, Any]], explain: bool = False
) -> Iterator[str]:
    batch: list[dict[str, Any]] = []
    for request in requests:
        batch.append(request)
        if len(batch) == BATCH:
            yield from _classify_batch(model, batch, explain)
            batch = []
    if batch:
        yield from _classify_batch(model, batch, explain)


def _classify_batch(model: Any, batch: list[dict[str, Any]], explain: bool) -> Iterator[str]:
    docs = [
        {"text": r["text"], "title": r.get("title") or "", "lang": r.get("lang")} for r in batch
    ]
    for request, result in zip(batch, model.classify(docs, explain=explain), strict=True):
        output = {"id": request.get("id"), **{key: result[key] for key in OUTPUT_KEYS}}
        if explain:
            output["evidence"] = result.get("evidence", {})
            output["model_version"] = result.get("model_version")
        yield json.dumps(output, ensure_ascii=False)
