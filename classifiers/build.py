"""Rebuild the bundled model and its evaluation report: ``python -m classifiers.build``.

Trains on the corpus's train split, evaluates on the fixed held-out split (plus the real
articles in ``../shared`` when present), writes ``models/atlaswatch-classifier.skops``
with its metadata, and ``models/evaluation.json`` / ``evaluation.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from classifiers.evaluation import evaluate, report_markdown, write_report
from classifiers.external import SHARED_DIR, external_report
from classifiers.modelfile import MODELS_DIR, bundled_model_path, save_model
from classifiers.training import corpus_sha256, load_corpus, train

HEADLINE_KEYS = ("precision", "recall", "f1")


def headline_metrics(report: dict) -> dict:
    """The figures recorded in the model's metadata file."""
    return {
        "split": "heldout",
        "n": report["n"]["examples"],
        "relevance": {k: report["relevance"][k] for k in (*HEADLINE_KEYS, "threshold")},
        "partners": {k: report["partners"]["micro"][k] for k in HEADLINE_KEYS},
        "topics": {k: report["topics"]["micro"][k] for k in HEADLINE_KEYS},
        "relevance_f1_by_language": {
            lang: block["relevance"]["f1"] for lang, block in report["per_language"].items()
        },
    }


def build(model_path: Path, report_dir: Path, shared_dir: Path, random_state: int = 0) -> dict:
    """Train, evaluate and write the model and report; returns the report."""
    started = time.perf_counter()
    clf = train(load_corpus("train"), random_state=random_state)
    trained = time.perf_counter()
    report = evaluate(clf, load_corpus("heldout"))
    report["cross_validated_on_train"] = clf.cv_scores_
    report["external"] = external_report(clf, shared_dir)
    save_model(clf, model_path, metrics=headline_metrics(report), corpus_sha256=corpus_sha256())
    write_report(report, report_dir)
    print(
        f"trained in {trained - started:.1f} s; model {clf.version} -> {model_path} "
        f"({model_path.stat().st_size / 1e6:.1f} MB)",
        file=sys.stderr,
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=bundled_model_path())
    parser.add_argument("--report-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--shared", type=Path, default=SHARED_DIR)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    report = build(args.model, args.report_dir, args.shared, args.random_state)
    print(report_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
