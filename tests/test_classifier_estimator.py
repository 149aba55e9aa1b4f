"""AtlasClassifier follows scikit-learn's estimator conventions (STYLE.md)."""

from __future__ import annotations

import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from classifiers import AtlasClassifier, load_corpus, train
from classifiers.ngrams import NgramTfidf


@pytest.fixture(scope="module")
def small_corpus() -> list[dict]:
    """A quick slice of the train split: every language, both classes."""
    examples = load_corpus("train")
    return examples[::6]


def quick_params() -> dict:
    return {
        "cv": 3,
        "text_features": NgramTfidf(min_df=2, max_word_features=5_000, max_char_features=8_000),
    }


def test_parameters_are_stored_untouched_and_settable() -> None:
    features = NgramTfidf(min_df=4)
    clf = AtlasClassifier(text_features=features, max_chars=5_000, cv=4, random_state=7)
    params = clf.get_params(deep=False)
    assert params["text_features"] is features
    assert params["max_chars"] == 5_000 and params["cv"] == 4 and params["random_state"] == 7
    assert clf.get_params(deep=True)["text_features__min_df"] == 4
    clf.set_params(cv=3, text_features__min_df=2)
    assert clf.cv == 3 and clf.text_features.min_df == 2


def test_clone_gives_an_unfitted_copy_with_equal_params(small_corpus: list[dict]) -> None:
    fitted = AtlasClassifier(**quick_params()).fit(small_corpus)
    copy = clone(fitted)
    assert copy is not fitted
    assert not hasattr(copy, "version_")
    assert {k: repr(v) for k, v in copy.get_params().items()} == {
        k: repr(v) for k, v in fitted.get_params().items()
    }


def test_unfitted_model_raises_not_fitted() -> None:
    clf = AtlasClassifier()
    with pytest.raises(NotFittedError):
        clf.classify([{"text": "Morocco and France sign a defence agreement."}])
    with pytest.raises(NotFittedError):
        _ = clf.version


def test_same_random_state_same_model(small_corpus: list[dict]) -> None:
    heldout = load_corpus("heldout")[:60]
    first = train(small_corpus, random_state=3, **quick_params())
    second = train(small_corpus, random_state=3, **quick_params())
    assert first.version == second.version
    assert first.classify(heldout) == second.classify(heldout)
    assert first.relevance_threshold_ == second.relevance_threshold_


def test_fit_returns_self_and_learned_attributes_end_in_underscore(
    small_corpus: list[dict],
) -> None:
    clf = AtlasClassifier(**quick_params())
    assert clf.fit(small_corpus) is clf
    learned = {k for k in vars(clf) if not k.startswith("_")} - set(clf.get_params(deep=False))
    assert learned and all(k.endswith("_") for k in learned)
    assert clf.version.count("-") == 1 and len(clf.version.split("-")[1]) == 8


def test_parts_are_replaceable_estimators(small_corpus: list[dict]) -> None:
    clf = AtlasClassifier(
        **quick_params(),
        text_relevance_model=LogisticRegression(C=3.0, class_weight="balanced"),
    ).fit(small_corpus)
    assert clf.text_relevance_model_.C == 3.0
    assert clf.text_relevance_model is not clf.text_relevance_model_  # cloned, not fitted in place


def test_fit_rejects_single_class_and_tiny_inputs(small_corpus: list[dict]) -> None:
    relevant_only = [e for e in small_corpus if e["relevant"]]
    with pytest.raises(ValueError, match="relevant and irrelevant"):
        AtlasClassifier(cv=3).fit(relevant_only)
    with pytest.raises(ValueError, match="at least"):
        AtlasClassifier(cv=3).fit(small_corpus[:4])
