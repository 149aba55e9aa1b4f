"""Evidence: for every tag, the sentence that supports it and the features that weighed most.

Linear parts explain themselves: a feature's weight times its value is its contribution,
and a sentence's score is the model's decision on that sentence alone. The partner scorer
is boosted trees, so its features are ranked by how much the candidate's score drops when
that feature is set to a neutral value (zero), one at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from classifiers.context import CANDIDATE_FEATURES, DOCUMENT_FEATURES, candidate_features

if TYPE_CHECKING:
    from classifiers.model import AtlasClassifier, Prepared, _Scores

TOP_FEATURES = 6
MAX_SENTENCE_CHARS = 400


def explain_document(
    clf: AtlasClassifier, p: Prepared, scores: _Scores, row: int, result: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Evidence for the relevance decision and for each partner and topic tag of one doc."""
    if p.empty:
        return {"relevant": {"sentence": "", "features": []}}
    x_doc = scores.x_text[row]
    sentence_matrix = _sentence_matrix(clf, p)
    relevance_coef = _binary_coef(clf.text_relevance_model_)
    evidence = {
        "relevant": {
            "sentence": _best_sentence(p, sentence_matrix, relevance_coef),
            "features": _relevance_features(clf, x_doc, relevance_coef, p),
        }
    }
    for code in result["partners"]:
        evidence[f"partner:{code}"] = _partner_evidence(clf, p, code)
    for topic in result["topics"]:
        k = list(clf.topics_).index(topic)
        coef = _binary_coef(clf.topic_model_.estimators_[k])
        evidence[f"topic:{topic}"] = {
            "sentence": _best_sentence(p, sentence_matrix, coef),
            "features": _text_features(clf, x_doc, coef),
        }
    return evidence


def _binary_coef(model: Any) -> np.ndarray:
    coef = getattr(model, "coef_", None)
    if coef is None:  # a constant predictor (label never seen): nothing to attribute
        return np.zeros(0)
    return np.asarray(coef).ravel()


def _sentence_matrix(clf: AtlasClassifier, p: Prepared) -> sp.csr_matrix:
    """TF-IDF of each sentence on its own."""
    doc, bounds = p.analysis.doc, p.analysis.bounds
    return clf.text_features_.transform([doc.norms[lo:hi] for lo, hi in bounds])


def _best_sentence(p: Prepared, sentences: sp.csr_matrix, coef: np.ndarray) -> str:
    """The sentence whose own text the model scores highest for this tag."""
    if coef.size == 0 or sentences.shape[0] == 0:
        return ""
    scores = sentences @ coef
    has_words = np.diff(sentences.indptr) > 0
    scores = np.where(has_words, scores, -np.inf)
    best = int(np.argmax(scores))
    return _clip(p.analysis.doc.sentences[best])


def _clip(sentence: str) -> str:
    sentence = " ".join(sentence.split())
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return sentence
    return sentence[: MAX_SENTENCE_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _text_features(clf: AtlasClassifier, x_doc: sp.csr_matrix, coef: np.ndarray) -> list[str]:
    """The n-grams of the document with the largest positive contribution."""
    if coef.size == 0 or x_doc.nnz == 0:
        return []
    contributions = x_doc.data * coef[x_doc.indices]
    order = np.argsort(-contributions)[:TOP_FEATURES]
    features = clf.text_features_
    return [features.feature_name(int(x_doc.indices[i])) for i in order if contributions[i] > 0]


def _relevance_features(
    clf: AtlasClassifier, x_doc: sp.csr_matrix, coef: np.ndarray, p: Prepared
) -> list[str]:
    """Top n-grams, then the context signals that pushed the stacked score up."""
    features = _text_features(clf, x_doc, coef)[: TOP_FEATURES - 2]
    stage = clf.relevance_model_
    final = stage[-1] if hasattr(stage, "steps") else stage
    weights = getattr(final, "coef_", None)
    if weights is None:
        return features
    z = np.concatenate([[0.0], p.context]).reshape(1, -1)
    z_scaled = stage[:-1].transform(z) if hasattr(stage, "steps") else z
    contributions = (np.asarray(weights).ravel() * z_scaled.ravel())[1:]
    order = np.argsort(-contributions)[:2]
    features += [f"context:{DOCUMENT_FEATURES[i]}" for i in order if contributions[i] > 0]
    return features


def _partner_evidence(clf: AtlasClassifier, p: Prepared, code: str) -> dict[str, Any]:
    codes, x = candidate_features(p.analysis)
    if code not in codes:
        return {"sentence": "", "features": []}
    row = x[codes.index(code)].reshape(1, -1)
    return {
        "sentence": _partner_sentence(p, code),
        "features": _partner_features(clf.partner_model_, row),
    }


def _partner_sentence(p: Prepared, code: str) -> str:
    """The candidate's sentence that best shows cooperation with Morocco's side."""
    from classifiers.context import COOPERATION

    analysis = p.analysis
    own = {m.sentence for m in analysis.own}
    best_key, best = None, ""
    for m in analysis.foreign.get(code, []):
        lo, hi = analysis.bounds[m.sentence]
        cues = analysis.count(COOPERATION, lo, hi)
        key = (m.sentence in own, cues, -m.sentence)
        if best_key is None or key > best_key:
            best_key, best = key, analysis.doc.sentences[m.sentence]
    return _clip(best)


def _partner_features(model: Any, row: np.ndarray) -> list[str]:
    """Features whose removal (set to 0) lowers this candidate's score the most."""
    from classifiers.model import _predict_small

    base = float(_predict_small(model, row)[0])
    probes = np.repeat(row, row.shape[1], axis=0)
    np.fill_diagonal(probes, 0.0)
    drops = base - _predict_small(model, probes)
    order = np.argsort(-drops)[:TOP_FEATURES]
    return [f"{CANDIDATE_FEATURES[i]}={row[0, i]:.2g}" for i in order if drops[i] > 1e-6]
