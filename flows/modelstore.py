"""Which classifier model is current, and retraining: fit on the corpus plus analysts' labels,
compare with the current model on the held-out split, promote only when not worse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

import classifiers
from flows.settings import Settings
from flows.workers import start_worker_server
from storage.feeds import iso
from storage.labels import training_examples
from storage.registry import promoted_model, record_model


def current_model_path(settings: Settings, db: sqlite_utils.Database | None) -> Path | None:
    """An explicit [classifier] model wins, then the promoted retrained model, else the bundled one (None)."""
    if settings.classifier.model:
        return Path(settings.classifier.model).expanduser()
    row = promoted_model(db) if db is not None else None
    return Path(row["path"]) if row else None


# The current model's path (empty: the bundled model) for the worker server to load before it
# forks workers, so that no worker spends its own 0.4 s loading it.
WORKER_MODEL_VARIABLE = "ATLASWATCH_WORKER_MODEL"
_CACHED: dict[tuple[Path | None, int], Any] = {}


def cached_model(path: Path | None) -> Any:
    """The model at `path` (None: the bundled one), loaded once per process and kept while the
    file is unchanged: a retrained model is a new file, one replaced in place is loaded again."""
    key = (path, path.stat().st_mtime_ns if path and path.exists() else 0)
    if key not in _CACHED:
        _CACHED.clear()
        _CACHED[key] = classifiers.load_model(path)
    return _CACHED[key]


def start_worker_server_with(path: Path | None) -> None:
    """Start the worker server (flows.workers), telling it to load the model at `path` (None:
    the bundled one) before it forks workers."""
    start_worker_server({WORKER_MODEL_VARIABLE: str(path) if path else ""})


def load_current_model(settings: Settings, db: sqlite_utils.Database | None) -> Any:
    """Raises classifiers.ModelFileError with a message that says what to do."""
    return classifiers.load_model(current_model_path(settings, db))


def headline_score(report: dict[str, Any]) -> float:
    """One number to compare models: the mean of relevance, partner and topic F1 on held-out data."""
    return (
        sum(report["summary"][key] for key in ("relevance_f1", "partner_f1", "topic_micro_f1")) / 3
    )


@dataclass
class RetrainOutcome:
    version: str
    path: Path
    promoted: bool
    reason: str
    new_report: dict[str, Any]
    current_report: dict[str, Any] | None
    label_count: int
    markdown: str


def retrain(
    db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _message: None,
) -> RetrainOutcome:
    labels = training_examples(db)
    examples = classifiers.load_corpus("train") + labels
    heldout = classifiers.load_corpus("heldout")
    progress(
        f"training on {len(examples)} examples ({len(labels)} of them your labels); this takes a few minutes"
    )
    model = classifiers.train(examples)
    progress(f"evaluating the new model {model.version} on {len(heldout)} held-out examples")
    new_report = classifiers.evaluate(model, heldout)
    try:
        current = load_current_model(settings, db)
        progress("evaluating the current model on the same examples")
        current_report = classifiers.evaluate(current, heldout)
    except classifiers.ModelFileError as error:
        progress(f"the current model cannot be loaded ({error}); the new one replaces it")
        current_report = None
    new_score = headline_score(new_report)
    if current_report is None:
        promoted, reason = True, "the current model could not be loaded"
    else:
        old_score = headline_score(current_report)
        promoted = force or new_score >= old_score - 1e-9
        verdict = (
            "not worse than"
            if promoted and not force
            else ("forced over" if force else "worse than")
        )
        reason = f"held-out score {new_score:.4f} is {verdict} the current model's {old_score:.4f}"
    path = settings.classifier.models_dir / f"{model.version}.skops"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = classifiers.save_model(model, path)
    record_model(db, meta, str(path.resolve()), iso(now), promote=promoted, note=reason)
    markdown = _report(
        model.version, promoted, reason, len(labels), len(examples), new_report, current_report
    )
    return RetrainOutcome(
        model.version, path, promoted, reason, new_report, current_report, len(labels), markdown
    )


def _report(
    version: str,
    promoted: bool,
    reason: str,
    labels: int,
    examples: int,
    new: dict[str, Any],
    current: dict[str, Any] | None,
) -> str:
    head = [
        f"# Retrained classifier {version}",
        "",
        f"**{'Promoted' if promoted else 'Not promoted'}**: {reason}.",
        f"Trained on {examples} examples, of which {labels} are analysts' labels.",
        "",
    ]
    if current is not None:
        head += ["| held-out | current | new |", "| --- | --- | --- |"]
        for key in ("relevance_f1", "partner_f1", "topic_micro_f1"):
            head.append(f"| {key} | {current['summary'][key]:.3f} | {new['summary'][key]:.3f} |")
        head.append("")
    return "\n".join(head) + "\n" + classifiers.report_markdown(new)
