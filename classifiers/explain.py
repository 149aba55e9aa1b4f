"""Evidence: for every tag, the sentence that supports it and the features that weighed most.

Linear parts explain themselves: a feature's weight times its value is its contribution,
and a sentence's score is the model's decision on that sentence alone. The partner scorer
is boosted trees, so its features are ranked by how much the candidate's score drops when
that feature is set to a neutral value (zero), one at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from classifiers.context import CANDIDATE_FEATURES, DOCUMENT_FEATURES, candidate_features

if TYPE_CHECKING:
    from classifiers.model import AtlasClassifier, Prepared, _Scores

TOP_FEATURES = 6
MAX_SENTENCE_CHARS = 400


def explain_batch(
    clf: AtlasClassifier,
    prepared: Sequence[Prepared],
    scores: _Scores,
    results: Sequence[Mapping[str, Any]],
) -> list[dict[str, dict[str, Any]]]:
    """Evidence for the relevance decision and for each partner and topic tag of each document.
    The work is batched over the documents: one vectorisation of all their sentences and one
    scorer call for all their partner probes, not one of each per document."""
    sentence_matrices = _sentence_matrices(clf, prepared)
    partner_features = _partner_features_batch(
        clf.partner_model_,
        [(p, result["partners"]) for p, result in zip(prepared, results, strict=True)],
    )
    relevance_coef = _binary_coef(clf.text_relevance_model_)
    topics = list(clf.topics_)
    topic_coefs = {t: _binary_coef(clf.topic_model_.estimators_[topics.index(t)]) for t in topics}
    out = []
    for i, (sentences, features) in enumerate(
        zip(sentence_matrices, partner_features, strict=True)
    ):
        p, result = prepared[i], results[i]
        if p.empty:
            out.append({"relevant": {"sentence": "", "features": []}})
            continue
        x_doc = scores.x_text[i]
        evidence = {
            "relevant": {
                "sentence": _best_sentence(p, sentences, relevance_coef),
                "features": _relevance_features(clf, x_doc, relevance_coef, p),
            }
        }
        for code in result["partners"]:
            evidence[f"partner:{code}"] = {
                "sentence": _partner_sentence(p, code),
                "features": features[code],
            }
        for topic in result["topics"]:
            evidence[f"topic:{topic}"] = {
                "sentence": _best_sentence(p, sentences, topic_coefs[topic]),
                "features": _text_features(clf, x_doc, topic_coefs[topic]),
            }
        out.append(evidence)
    return out


def _binary_coef(model: Any) -> np.ndarray:
    coef = getattr(model, "coef_", None)
    if coef is None:  # a constant predictor (label never seen): nothing to attribute
        return np.zeros(0)
    return np.asarray(coef).ravel()


def _sentence_matrices(clf: AtlasClassifier, prepared: Sequence[Prepared]) -> list[sp.csr_matrix]:
    """TF-IDF of each sentence on its own, one matrix per document."""
    tokens, offsets = [], [0]
    for p in prepared:
        doc = p.analysis.doc
        tokens.extend(doc.norms[lo:hi] for lo, hi in p.analysis.bounds)
        offsets.append(len(tokens))
    matrix = clf.text_features_.transform(tokens) if tokens else sp.csr_matrix((0, 0))
    return [matrix[lo:hi] for lo, hi in itertools.pairwise(offsets)]


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


def _partner_features_batch(
    model: Any, docs: Sequence[tuple[Prepared, Sequence[str]]]
) -> list[dict[str, list[str]]]:
    """For each tagged partner of each document, the features whose removal (set to 0) lowers
    its score the most. Every probe of every partner goes to the scorer in one call: boosted
    trees cost about a millisecond a call however few the rows."""
    from classifiers.model import _predict_small

    wanted: list[tuple[int, str, np.ndarray]] = []
    for d, (p, partners) in enumerate(docs):
        if not partners:
            continue
        codes, x = candidate_features(p.analysis)
        wanted.extend((d, code, x[codes.index(code)]) for code in partners if code in codes)
    out: list[dict[str, list[str]]] = [{code: [] for code in partners} for _, partners in docs]
    if not wanted:
        return out
    width = len(CANDIDATE_FEATURES)
    blocks = []
    for _, _, row in wanted:
        probes = np.repeat(row.reshape(1, -1), width + 1, axis=0)
        # Probe k has feature k zeroed; row 0 is the candidate as is.
        np.fill_diagonal(probes[1:], 0.0)
        blocks.append(probes)
    scores = _predict_small(model, np.vstack(blocks)).reshape(len(wanted), width + 1)
    for (d, code, row), block in zip(wanted, scores, strict=True):
        drops = block[0] - block[1:]
        order = np.argsort(-drops)[:TOP_FEATURES]
        out[d][code] = [f"{CANDIDATE_FEATURES[i]}={row[i]:.2g}" for i in order if drops[i] > 1e-6]
    return out
