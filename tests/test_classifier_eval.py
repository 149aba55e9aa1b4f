"""The evaluation gate: the bundled model's held-out scores stay above pinned floors, and the
bundled model was trained on the corpus as it is now."""

from __future__ import annotations

import json

import pytest

from classifiers import (
    AtlasClassifier,
    bundled_model_path,
    evaluate,
    load_corpus,
    load_model,
    report_markdown,
    write_report,
)
from classifiers.modelfile import metadata_path
from classifiers.training import SPLIT_PATH, corpus_files, corpus_sha256, read_examples

# Floors pinned a little under the bundled model's held-out figures (classifiers/models/
# evaluation.md: relevance 0.962, partners 0.921, topics 0.872, per language 0.921-1.0),
# above the targets (0.95 / 0.92 / 0.85 / 0.90) but for partners, which reach theirs
# by a hair. Relevance went back to 0.96: the model whose cue words no longer mistake
# "ministry" for a visit or "investigation" for investment, chosen on training cross-
# validation before its one held-out run, scores 0.962 there (0.967 before the fix).
FLOORS = {"relevance": 0.96, "partners": 0.915, "topics": 0.87}
LANGUAGE_FLOOR = 0.92


@pytest.fixture(scope="module")
def model() -> AtlasClassifier:
    return load_model()


@pytest.fixture(scope="module")
def report(model: AtlasClassifier) -> dict:
    return evaluate(model, load_corpus("heldout"))


def test_heldout_scores_stay_above_floors(report: dict) -> None:
    assert report["relevance"]["f1"] >= FLOORS["relevance"]
    assert report["partners"]["micro"]["f1"] >= FLOORS["partners"]
    assert report["topics"]["micro"]["f1"] >= FLOORS["topics"]


@pytest.mark.parametrize("lang", ["en", "fr", "ar", "es"])
def test_heldout_relevance_per_language(report: dict, lang: str) -> None:
    assert report["per_language"][lang]["relevance"]["f1"] >= LANGUAGE_FLOOR


def test_report_is_complete_json_and_markdown(report: dict, tmp_path) -> None:
    assert report["n"]["examples"] == len(load_corpus("heldout"))
    assert set(report["topics"]["per_label"]) >= {"agreement", "peacekeeping", "cyber"}
    assert len(report["relevance_curve"]) >= 10
    assert set(report["summary"]) == {"relevance_f1", "partner_f1", "topic_micro_f1"}
    json_path, md_path = write_report(report, tmp_path)
    assert json.loads(json_path.read_text())["model_version"] == report["model_version"]
    markdown = md_path.read_text()
    assert markdown == report_markdown(report)
    assert "| es |" in markdown and "Relevance threshold curve" in markdown


def test_report_holds_each_figure_to_its_target_to_four_places(report: dict) -> None:
    short = {
        **report,
        "partners": {**report["partners"], "micro": {**report["partners"]["micro"], "f1": 0.9197}},
    }
    assert "| partner micro-F1 | 0.9197 | 0.92 | MISSED |" in report_markdown(short)
    exact = {
        **report,
        "partners": {**report["partners"], "micro": {**report["partners"]["micro"], "f1": 0.92}},
    }
    assert "| partner micro-F1 | 0.9200 | 0.92 | met |" in report_markdown(exact)


def test_bundled_model_matches_the_current_corpus() -> None:
    meta = json.loads(metadata_path(bundled_model_path()).read_text())
    assert meta["corpus_sha256"] == corpus_sha256(), (
        "the corpus or its split changed since the bundled model was built: "
        "run `python -m classifiers.build` and commit classifiers/models/"
    )
    assert meta["n_train"] == len(load_corpus("train"))


def test_split_is_fixed_stratified_and_covers_the_corpus() -> None:
    examples = read_examples(corpus_files())
    heldout = set(json.loads(SPLIT_PATH.read_text())["heldout"])
    ids = {e["id"] for e in examples}
    assert heldout <= ids, "split.json names examples that are no longer in the corpus"
    for lang in ("en", "fr", "ar", "es"):
        for relevant in (True, False):
            group = [e for e in examples if e["lang"] == lang and e["relevant"] == relevant]
            share = sum(e["id"] in heldout for e in group) / len(group)
            assert 0.15 <= share <= 0.25, (lang, relevant, share)
    train_ids = {e["id"] for e in load_corpus("train")}
    assert not train_ids & heldout and train_ids | heldout == ids
