"""AtlasClassifier: relevance, partners and topics of news on Morocco's defence cooperation.

One scikit-learn estimator composed of plain scikit-learn parts:

- ``text_features``: word and character n-gram TF-IDF (:class:`NgramTfidf`), shared by
  relevance and topics so a document is featurised once;
- ``text_relevance_model``: a linear classifier over the TF-IDF;
- ``relevance_model``: a second stage over the (out-of-fold) text score and the
  document's context features: is Morocco's side there, does a foreign party stand
  beside it in the same sentences, with which words. It is what lets "Morocco named once
  at the end" or "no foreign party" overrule military vocabulary;
- ``topic_model``: one-vs-rest linear classifiers over the TF-IDF, fitted on relevant
  documents only, one threshold per label; long pieces are also scored by passage;
- ``partner_model``: a scorer over each gazetteer candidate's context features deciding
  whether it is Morocco's counterpart; no feature names a country.

Every threshold, and the second relevance stage, come from cross-validation on the
training examples given to ``fit``: the held-out split is never seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from classifiers.context import (
    CANDIDATE_FEATURES,
    DOCUMENT_FEATURES,
    FEATURE_SCHEMA,
    Analysis,
    analyse,
    candidate_features,
    document_features,
)
from classifiers.gazetteer import GAZETTEER_PATH, SELF, Gazetteer
from classifiers.ngrams import NgramTfidf
from classifiers.taxonomy import TOPICS
from classifiers.text import (
    LANGUAGE_SAMPLE_CHARS,
    UNDETERMINED,
    detect_language,
    tokenize_document,
    truncate,
)

MAX_TITLE_CHARS = 1_000
BATCH_SIZE = 64  # documents featurised at once: bounds memory on long streams
PASSAGE_TOKENS = 200  # words per passage when a long piece is scored in parts
MAX_PASSAGES = 24
NO_COUNTERPART_FACTOR = 0.1  # see _without_counterpart
_THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


# ---------------------------------------------------------------------------------------
# Default parts
# ---------------------------------------------------------------------------------------
def default_text_features() -> NgramTfidf:
    """Word 1-2-grams and char 3-5-grams; min_df and caps keep rare, corpus-specific
    strings out and the model file small."""
    return NgramTfidf(min_df=3, max_df=0.5, max_word_features=30_000, max_char_features=50_000)


def default_text_relevance_model(random_state: int | None = 0) -> LogisticRegression:
    return LogisticRegression(
        C=30.0, class_weight="balanced", solver="liblinear", random_state=random_state
    )


def default_relevance_model(random_state: int | None = 0) -> Pipeline:
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(C=1.0, max_iter=2000, random_state=random_state)),
        ]
    )


def default_topic_model(random_state: int | None = 0) -> OneVsRestClassifier:
    return OneVsRestClassifier(
        LogisticRegression(
            C=30.0, class_weight="balanced", solver="liblinear", random_state=random_state
        )
    )


def fit_topic_model(
    model: Any, featurizer: NgramTfidf, x_text: sp.csr_matrix, y: np.ndarray, word_weight: float
) -> Any:
    """Fit the topic model with the word n-gram block weighted ``word_weight`` against the
    character block, then fold the weights into its linear coefficients.

    Cross-validation on the training examples chose 0.5 (topic micro-F1, mean of three fold
    seeds: 0.863, against 0.862 at 0.35 and 0.859 with equal weights; words alone fell to
    0.83): the word 1-2-grams fit the corpus's own phrasing, while character n-grams carry
    topic words through inflection, spelling and four languages. Both blocks
    are L2-normalised on their own, so the weighted rows keep one norm and folding the
    weights into ``coef_`` leaves a model that reads the plain TF-IDF: scoring, evidence and
    the model file are those of an ordinary one-vs-rest linear model.
    """
    if word_weight == 1.0:
        return model.fit(x_text, y)
    scale = np.ones(x_text.shape[1])
    scale[: len(featurizer.word_vocabulary_)] = word_weight
    model.fit(x_text @ sp.diags(scale), y)
    estimators = getattr(model, "estimators_", [model])
    for est in estimators:
        final = est[-1] if hasattr(est, "steps") else est
        if type(final).__name__ == "_ConstantPredictor":  # a label never or always seen
            continue
        if getattr(final, "coef_", np.zeros(0)).shape[-1] != scale.size:
            raise TypeError("topic_word_weight other than 1 needs linear topic estimators")
        final.coef_ = final.coef_ * scale
    return model


def default_partner_model(random_state: int | None = 0) -> HistGradientBoostingClassifier:
    # Shallow boosted trees: the features interact (being named often matters little when
    # every mention sits in a "Read also" line), which a linear scorer cannot express.
    # Leaves of at least 40 candidates keep it from memorising single corpus articles.
    return HistGradientBoostingClassifier(
        max_depth=3,
        learning_rate=0.1,
        max_iter=120,
        min_samples_leaf=40,
        random_state=random_state,
    )


# ---------------------------------------------------------------------------------------
# Documents and labels
# ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class Prepared:
    """A document cut to size, tokenised and analysed."""

    lang: str
    empty: bool
    analysis: Analysis
    context: np.ndarray  # document-level context features


@dataclass(slots=True)
class Labels:
    relevant: np.ndarray  # (n,) bool
    topics: np.ndarray  # (n, len(TOPICS)) int
    partners: list[set[str]]


def _labels_of(examples: Sequence[Mapping[str, Any]]) -> Labels:
    relevant = np.array([bool(e["relevant"]) for e in examples])
    topics = np.array(
        [[int(t in set(e.get("topics") or ())) for t in TOPICS] for e in examples], dtype=int
    ).reshape(len(examples), len(TOPICS))
    partners = [set(e.get("partners") or ()) - {SELF} for e in examples]
    return Labels(relevant, topics, partners)


@dataclass(slots=True)
class Parts:
    """The fitted text-level parts of one (fold or final) fit."""

    text_features: NgramTfidf
    text_relevance: Any
    topics: Any
    partners: Any


class AtlasClassifier(BaseEstimator):
    """Tags news on Morocco's defence cooperation: relevance, partners and topics.

    Relevance is stacked: a linear model reads the TF-IDF, and a second model combines
    its (out-of-fold) score with the document's context features, which is where "no
    foreign party beside Morocco" or "Morocco named once at the end" can overrule
    military vocabulary.

    Parameters
    ----------
    text_features:
        Unfitted n-gram TF-IDF transformer (None: :func:`default_text_features`).
    text_relevance_model:
        Binary classifier over the TF-IDF with ``predict_proba``.
    relevance_model:
        Binary classifier over [logit of the text score, context features].
    topic_model:
        Multi-label classifier over the TF-IDF with ``predict_proba``.
    partner_model:
        Binary classifier over candidate context features with ``predict_proba``.
    gazetteer_path:
        JSON gazetteer read at fit time and stored in the model; None for the bundled one.
    max_chars:
        Bodies are cut to this many characters before anything else, so a huge page costs
        a bounded time.
    topic_threshold_shrinkage:
        Weight of the threshold shared by all topics in each topic's threshold (the rest
        is the topic's own cross-validated optimum); see :func:`topic_thresholds`.
    topic_word_weight:
        Weight of the word n-gram block against the character block in the topic model's
        input (see :func:`fit_topic_model`); 1 for the TF-IDF as it is.
    cv:
        Folds of the cross-validation on the training examples that produces the stacked
        relevance inputs and every threshold.
    random_state:
        Seed of the fold shuffling and of the estimators.
    """

    def __init__(
        self,
        *,
        text_features: NgramTfidf | None = None,
        text_relevance_model: Any = None,
        relevance_model: Any = None,
        topic_model: Any = None,
        partner_model: Any = None,
        gazetteer_path: str | None = None,
        max_chars: int = 20_000,
        topic_threshold_shrinkage: float = 0.8,
        topic_word_weight: float = 0.5,
        cv: int = 5,
        random_state: int | None = 0,
    ) -> None:
        self.text_features = text_features
        self.text_relevance_model = text_relevance_model
        self.relevance_model = relevance_model
        self.topic_model = topic_model
        self.partner_model = partner_model
        self.gazetteer_path = gazetteer_path
        self.max_chars = max_chars
        self.topic_threshold_shrinkage = topic_threshold_shrinkage
        self.topic_word_weight = topic_word_weight
        self.cv = cv
        self.random_state = random_state

    # -- persistence: drop caches rebuilt on demand --------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        return {k: v for k, v in state.items() if not k.startswith("_cache")}

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "version_")

    @property
    def version(self) -> str:
        """Stable id of this fitted model: fitting date and a digest of the training data,
        the parameters and what was learnt (identical refits share it)."""
        check_is_fitted(self)
        return self.version_

    @property
    def gazetteer(self) -> Gazetteer:
        """The gazetteer stored in the model at fit time."""
        cached = getattr(self, "_cache_gazetteer", None)
        if cached is None:  # checked only once: check_is_fitted costs more than a document
            check_is_fitted(self, "gazetteer_tsv_")
            cached = self._cache_gazetteer = Gazetteer.from_tsv(self.gazetteer_tsv_)
        return cached

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: Sequence[Mapping[str, Any]], y: Sequence[Mapping] | None = None):
        """Fit on documents ``X``; labels from ``y`` or, when None, from ``X`` itself.

        Each label mapping has ``relevant`` (bool), ``partners`` and ``topics`` (lists).
        """
        examples = list(X)
        labels = _labels_of(examples if y is None else list(y))
        self._validate(examples, labels)
        for attr in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, attr)  # refitting starts from nothing
        gazetteer = Gazetteer.from_file(self.gazetteer_path or GAZETTEER_PATH)
        # One string, not an array: a fixed-width array pads every term to the longest one.
        self.gazetteer_tsv_ = gazetteer.to_tsv()
        self._cache_gazetteer = gazetteer
        self.topics_ = np.array(TOPICS, dtype=str)
        self.feature_schema_ = FEATURE_SCHEMA
        prepared = [self._prepare(doc) for doc in examples]
        oof = self._cross_validate(prepared, labels)
        self._fit_relevance(prepared, labels, oof)
        self._fit_thresholds(labels, oof)
        self.cv_scores_ = self._oof_metrics(prepared, labels, oof)
        parts = self._fit_parts(prepared, labels)
        self.text_features_ = parts.text_features
        self.text_relevance_model_ = parts.text_relevance
        self.topic_model_ = parts.topics
        self.partner_model_ = parts.partners
        self.n_train_ = len(examples)
        self.version_ = self._make_version(examples, labels)
        return self

    def _validate(self, examples: Sequence[Mapping], labels: Labels) -> None:
        if len(examples) < 2 * self.cv:
            raise ValueError(f"need at least {2 * self.cv} examples to fit, got {len(examples)}")
        if labels.relevant.all() or not labels.relevant.any():
            raise ValueError("training examples must include relevant and irrelevant ones")
        for i, e in enumerate(examples):
            if not isinstance(e.get("text", ""), str) or not isinstance(e.get("title", ""), str):
                raise TypeError(f"example {i}: text and title must be strings")

    def _fit_parts(self, prepared: Sequence[Prepared], labels: Labels) -> Parts:
        rs = self.random_state
        tokens = [p.analysis.doc.norms for p in prepared]
        featurizer = clone(self.text_features or default_text_features()).fit(tokens)
        x_text = featurizer.transform(tokens)
        text_relevance = clone(self.text_relevance_model or default_text_relevance_model(rs))
        text_relevance.fit(x_text, labels.relevant)
        rel = np.flatnonzero(labels.relevant)
        topics = clone(self.topic_model or default_topic_model(rs))
        fit_topic_model(topics, featurizer, x_text[rel], labels.topics[rel], self.topic_word_weight)
        rows, targets = _partner_training_rows(
            [prepared[i] for i in rel], [labels.partners[i] for i in rel]
        )
        partners = clone(self.partner_model or default_partner_model(rs))
        partners.fit(rows, targets)
        return Parts(featurizer, text_relevance, topics, partners)

    def _folds(self, prepared: Sequence[Prepared], labels: Labels) -> list[tuple]:
        strata = [f"{p.lang}|{int(r)}" for p, r in zip(prepared, labels.relevant, strict=True)]
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        return list(folds.split(np.zeros(len(prepared)), _safe_strata(strata, self.cv)))

    def _cross_validate(self, prepared: Sequence[Prepared], labels: Labels) -> _Scores:
        """Out-of-fold text relevance, topic and partner scores of the training examples."""
        n = len(prepared)
        oof = _Scores(np.zeros(n), np.zeros((n, len(TOPICS))), [{} for _ in range(n)], None)
        for train_idx, test_idx in self._folds(prepared, labels):
            parts = self._fit_parts([prepared[i] for i in train_idx], _subset(labels, train_idx))
            scores = self._score_parts([prepared[i] for i in test_idx], parts)
            oof.relevance[test_idx] = scores.relevance
            oof.topics[test_idx] = scores.topics
            for i, s in zip(test_idx, scores.partners, strict=True):
                oof.partners[i] = s
        return oof

    def _fit_relevance(self, prepared: Sequence[Prepared], labels: Labels, oof: _Scores) -> None:
        """Second stage on out-of-fold text scores, so it learns how far to trust them."""
        z = _stack(oof.relevance, prepared)
        model = self.relevance_model or default_relevance_model(self.random_state)
        self.relevance_model_ = clone(model).fit(z, labels.relevant)
        stacked = np.zeros(len(prepared))
        for train_idx, test_idx in self._folds(prepared, labels):
            fold_model = clone(model).fit(z[train_idx], labels.relevant[train_idx])
            stacked[test_idx] = fold_model.predict_proba(z[test_idx])[:, 1]
        oof.stacked = _without_counterpart(stacked, prepared)

    def _fit_thresholds(self, labels: Labels, oof: _Scores) -> None:
        rel = np.flatnonzero(labels.relevant)
        self.relevance_threshold_ = best_threshold(labels.relevant, oof.stacked)
        self.topic_thresholds_ = topic_thresholds(
            labels.topics[rel], oof.topics[rel], self.topic_threshold_shrinkage
        )
        self.partner_threshold_ = best_partner_threshold(
            [oof.partners[i] for i in rel], [labels.partners[i] for i in rel]
        )

    def _oof_metrics(
        self, prepared: Sequence[Prepared], labels: Labels, oof: _Scores
    ) -> dict[str, float]:
        """Cross-validated end-to-end figures on the training examples (a tuning signal)."""
        decided = oof.stacked >= self.relevance_threshold_
        counts = np.zeros((2, 3))  # rows: partners, topics; columns: tp, fp, fn
        for i, p in enumerate(prepared):
            tags = self._decide(p, oof.stacked[i], oof.topics[i], oof.partners[i])
            gold_topics = {t for t, y in zip(TOPICS, labels.topics[i], strict=True) if y}
            for row, (pred, gold) in enumerate(
                ((set(tags["partners"]), labels.partners[i]), (set(tags["topics"]), gold_topics))
            ):
                counts[row] += (len(pred & gold), len(pred - gold), len(gold - pred))
        f1 = [float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0 for tp, fp, fn in counts]
        rel = np.flatnonzero(labels.relevant)
        scores = {
            "relevance_f1": _f1(labels.relevant, decided),
            "text_relevance_f1": _f1(
                labels.relevant, oof.relevance >= best_threshold(labels.relevant, oof.relevance)
            ),
            "partner_f1": f1[0],
            "topic_f1": f1[1],
            "partner_f1_given_relevant": _partner_f1(
                [oof.partners[i] for i in rel],
                [labels.partners[i] for i in rel],
                self.partner_threshold_,
            ),
            "relevance_threshold": float(self.relevance_threshold_),
            "partner_threshold": float(self.partner_threshold_),
        }
        for lang in sorted({p.lang for p in prepared}):
            idx = np.array([p.lang == lang for p in prepared])
            scores[f"relevance_f1_{lang}"] = _f1(labels.relevant[idx], decided[idx])
        self._cache_oof = oof
        return scores

    def _make_version(self, examples: Sequence[Mapping], labels: Labels) -> str:
        digest = hashlib.sha256()
        params = {k: repr(v) for k, v in sorted(self.get_params(deep=False).items())}
        digest.update(json.dumps(params, sort_keys=True).encode())
        for e, rel, parts in zip(examples, labels.relevant, labels.partners, strict=True):
            digest.update(f"{e.get('title', '')}\x00{e.get('text', '')}\x00{rel}".encode())
            digest.update(",".join(sorted(parts)).encode())
        digest.update(labels.topics.tobytes())
        self.training_digest_ = digest.hexdigest()
        # The id also covers what was learnt, so a change of code that changes the model
        # (same data, same parameters) still gives it a new version.
        digest.update(FEATURE_SCHEMA.encode())
        for learnt in (
            self.text_relevance_model_,
            self.relevance_model_,
            *self.topic_model_.estimators_,
        ):
            final = learnt[-1] if hasattr(learnt, "steps") else learnt
            digest.update(np.asarray(getattr(final, "coef_", 0.0), dtype=np.float64).tobytes())
        thresholds = [self.relevance_threshold_, self.partner_threshold_, *self.topic_thresholds_]
        digest.update(np.asarray(thresholds, dtype=np.float64).tobytes())
        day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
        return f"{day}-{digest.hexdigest()[:8]}"

    # -- preparing and scoring -------------------------------------------------------------
    def _prepare(self, doc: Mapping[str, Any]) -> Prepared:
        if not isinstance(doc, Mapping):
            raise TypeError(f"each document must be a mapping with 'text', got {type(doc)}")
        title = truncate(str(doc.get("title") or ""), MAX_TITLE_CHARS)
        text = truncate(str(doc.get("text") or ""), self.max_chars)
        empty = not text.strip() and not title.strip()
        lang = doc.get("lang")
        if empty:
            lang = UNDETERMINED
        elif not isinstance(lang, str) or not lang.strip():
            lang = detect_language(f"{title}\n{text[:LANGUAGE_SAMPLE_CHARS]}")
        analysis = analyse(tokenize_document(title, text), self.gazetteer)
        return Prepared(lang.strip().lower(), empty, analysis, document_features(analysis))

    def _score_parts(
        self, prepared: Sequence[Prepared], parts: Parts, tag_rows: np.ndarray | None = None
    ) -> _Scores:
        """Text relevance, topic and partner scores from one set of fitted parts.

        Topics and partners are scored for ``tag_rows`` only (default: every row); the
        other rows get zeros and no candidates, which is all a piece that is not relevant
        needs, and saves most of the per-candidate work at prediction time.
        """
        tokens = [p.analysis.doc.norms for p in prepared]
        x_text = parts.text_features.transform(tokens)
        relevance = parts.text_relevance.predict_proba(x_text)[:, 1]
        rows = np.arange(len(prepared)) if tag_rows is None else tag_rows
        topics = np.zeros((len(prepared), len(TOPICS)))
        partners: list[dict[str, float]] = [{} for _ in prepared]
        if len(rows):
            subset = [prepared[i] for i in rows]
            topics[rows] = self._topic_scores(parts, subset, x_text[rows])
            for i, scores in zip(rows, _partner_scores(parts.partners, subset), strict=True):
                partners[i] = scores
        return _Scores(relevance, topics, partners, x_text)

    @staticmethod
    def _topic_scores(
        parts: Parts, prepared: Sequence[Prepared], x_text: sp.csr_matrix
    ) -> np.ndarray:
        """Topic probabilities: the whole piece's, raised to its best passage's.

        The corpus pieces are news-length; a long analysis covers one subject per section
        and, scored as a whole, every topic is diluted below its threshold. Its passages
        are scored like news pieces and each topic keeps its best score.
        """
        scores = _positive_proba(parts.topics, x_text)
        chunks, owners = [], []
        for i, p in enumerate(prepared):
            for words in passages(p.analysis):
                chunks.append(words)
                owners.append(i)
        if chunks:
            chunk_scores = _positive_proba(parts.topics, parts.text_features.transform(chunks))
            np.maximum.at(scores, np.array(owners), chunk_scores)
        return scores

    def _score(self, prepared: Sequence[Prepared], tags: bool = True) -> _Scores:
        """Final relevance scores; topic and partner scores for the relevant pieces."""
        parts = self._parts()
        scores = self._score_parts(prepared, parts, tag_rows=np.zeros(0, dtype=int))
        stacked = self.relevance_model_.predict_proba(_stack(scores.relevance, prepared))[:, 1]
        stacked = _without_counterpart(stacked, prepared)
        scores.stacked = np.where([p.empty for p in prepared], 0.0, stacked)
        relevant = np.flatnonzero(scores.stacked >= self.relevance_threshold_) if tags else []
        if len(relevant):
            subset = [prepared[i] for i in relevant]
            scores.topics[relevant] = self._topic_scores(parts, subset, scores.x_text[relevant])
            for i, found in zip(relevant, _partner_scores(parts.partners, subset), strict=True):
                scores.partners[i] = found
        return scores

    def _parts(self) -> Parts:
        check_is_fitted(self)
        return Parts(
            self.text_features_, self.text_relevance_model_, self.topic_model_, self.partner_model_
        )

    # -- public prediction -----------------------------------------------------------------
    def classify(self, docs: Sequence[Mapping[str, Any]], explain: bool = False) -> list[dict]:
        """Tag each document: ``relevant``, ``score``, ``partners``, ``topics``, ``lang``,
        ``model_version`` and, with ``explain``, the ``evidence`` of every tag."""
        check_is_fitted(self)
        docs = list(docs)
        results: list[dict] = []
        for start in range(0, len(docs), BATCH_SIZE):
            results.extend(self._classify_batch(docs[start : start + BATCH_SIZE], explain))
        return results

    def predict(self, X: Sequence[Mapping[str, Any]]) -> list[dict]:
        """Same as :meth:`classify` without evidence (scikit-learn naming)."""
        return self.classify(X)

    def _classify_batch(self, batch: Sequence[Mapping], explain: bool) -> list[dict]:
        prepared = [self._prepare(doc) for doc in batch]
        scores = self._score(prepared)
        results = [
            self._decide(p, scores.stacked[i], scores.topics[i], scores.partners[i])
            for i, p in enumerate(prepared)
        ]
        if explain:
            from classifiers.explain import explain_batch

            for result, evidence in zip(
                results, explain_batch(self, prepared, scores, results), strict=True
            ):
                result["evidence"] = evidence
        return results

    def _decide(
        self,
        p: Prepared,
        rel_score: float,
        topic_scores: np.ndarray,
        partner_scores: Mapping[str, float],
    ) -> dict:
        """The tags of one document from its scores and the fitted thresholds."""
        if p.empty:
            return self._result(False, 0.0, [], [], p.lang)
        if rel_score < self.relevance_threshold_:
            return self._result(False, rel_score, [], [], p.lang)
        chosen = _decide_topics(topic_scores.reshape(1, -1), self.topic_thresholds_)[0]
        topics = [t for t, keep in zip(TOPICS, chosen, strict=True) if keep]
        partners = pick_partners(partner_scores, self.partner_threshold_)
        return self._result(True, rel_score, partners, topics, p.lang)

    def _result(
        self, relevant: bool, score: float, partners: list[str], topics: list[str], lang: str
    ) -> dict:
        return {
            "relevant": relevant,
            "score": round(float(min(max(score, 0.0), 1.0)), 4),
            "partners": partners,
            "topics": topics,
            "lang": lang,
            "model_version": getattr(self, "version_", ""),
        }

    def relevance_scores(self, docs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Relevance probability of each document (empty documents score 0)."""
        check_is_fitted(self)
        docs = list(docs)
        out = [
            self._score([self._prepare(d) for d in docs[i : i + BATCH_SIZE]], tags=False).stacked
            for i in range(0, len(docs), BATCH_SIZE)
        ]
        return np.concatenate(out) if out else np.zeros(0)


def passages(analysis: Analysis, size: int = PASSAGE_TOKENS) -> list[list[str]]:
    """Consecutive runs of whole body sentences of about ``size`` words, for long pieces."""
    doc = analysis.doc
    if doc.n_tokens <= 2 * size:  # news-length: scored whole, like the corpus
        return []
    out: list[list[str]] = []
    current: list[str] = []
    for lo, hi in analysis.bounds[doc.n_title_sentences :]:
        current.extend(doc.norms[lo:hi])
        if len(current) >= size:
            out.append(current)
            current = []
            if len(out) == MAX_PASSAGES:
                return out
    if len(current) >= size // 2:
        out.append(current)
    return out


@lru_cache(maxsize=1)
def _openmp() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="openmp")


def _predict_small(model: Any, rows: np.ndarray) -> np.ndarray:
    """Positive-class probabilities of a few rows on one OpenMP thread.

    Boosted trees predict with OpenMP; on the tens of candidates of a batch, starting the
    threads costs far more than the work (measured: 69 ms a call with two busy cores,
    1.5 ms on one thread).
    """
    with _openmp().limit(limits=1):
        return model.predict_proba(rows)[:, 1]


def _partner_scores(model: Any, prepared: Sequence[Prepared]) -> list[dict[str, float]]:
    """Each document's candidates with the scorer's probability of being a partner."""
    blocks = [candidate_features(p.analysis) for p in prepared]
    rows = [x for _, x in blocks if len(x)]
    probs = _predict_small(model, np.vstack(rows)) if rows else np.zeros(0)
    out: list[dict[str, float]] = []
    offset = 0
    for codes, _ in blocks:
        out.append(dict(zip(codes, probs[offset : offset + len(codes)].tolist(), strict=True)))
        offset += len(codes)
    return out


def _partner_training_rows(
    prepared: Sequence[Prepared], gold: Sequence[set[str]]
) -> tuple[np.ndarray, np.ndarray]:
    rows = [np.zeros((0, len(CANDIDATE_FEATURES)))]
    targets: list[bool] = []
    for p, partners in zip(prepared, gold, strict=True):
        codes, x = candidate_features(p.analysis)
        rows.append(x)
        targets.extend(code in partners for code in codes)
    return np.vstack(rows), np.array(targets, dtype=int)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _without_counterpart(stacked: np.ndarray, prepared: Sequence[Prepared]) -> np.ndarray:
    """Relevance probabilities, divided by ten for pieces naming no possible counterpart.

    TAXONOMY makes a partner part of relevance, and partners are chosen among the
    gazetteer's candidates: a piece without any (a bare "Morocco", a domestic brief)
    would otherwise come out relevant with no partner. Six of the 930 relevant corpus
    pieces name their counterpart only in a way the gazetteer misses; they pay for it.
    """
    alone = np.array([not p.analysis.foreign for p in prepared], dtype=bool)
    return np.where(alone, stacked * NO_COUNTERPART_FACTOR, stacked)


def _stack(text_scores: np.ndarray, prepared: Sequence[Prepared]) -> np.ndarray:
    """Inputs of the relevance stage: logit of the text score, then the context features."""
    context = np.vstack([p.context for p in prepared]).reshape(len(prepared), -1)
    return np.column_stack([_logit(text_scores), context])


STACK_FEATURES: tuple[str, ...] = ("text_score", *DOCUMENT_FEATURES)


@dataclass(slots=True)
class _Scores:
    relevance: np.ndarray  # text-only relevance probability
    topics: np.ndarray
    partners: list[dict[str, float]]
    x_text: sp.csr_matrix | None
    stacked: np.ndarray | None = None  # final relevance probability


def _positive_proba(model: Any, x: sp.csr_matrix) -> np.ndarray:
    """Each label's positive-class probability. A multi-label one-vs-rest set of binary logistic
    regressions (the default topic model) is scored straight from its coefficients: the very
    numbers of ``predict_proba``, without a validation round per label (5 % of the classifier's
    time)."""
    if _plain_logistic_labels(model):
        decision = np.column_stack([x @ e.coef_[0] for e in model.estimators_])
        return expit(decision + np.concatenate([e.intercept_ for e in model.estimators_]))
    proba = model.predict_proba(x)
    return np.asarray(proba, dtype=np.float64).reshape(x.shape[0], -1)


def _plain_logistic_labels(model: Any) -> bool:
    estimators = getattr(model, "estimators_", None)
    return (
        isinstance(model, OneVsRestClassifier)
        and bool(estimators)
        and getattr(getattr(model, "label_binarizer_", None), "y_type_", "")
        == "multilabel-indicator"
        and all(type(e) is LogisticRegression and e.coef_.shape[0] == 1 for e in estimators)
    )


def pick_partners(scores: Mapping[str, float], threshold: float) -> list[str]:
    """Candidates scoring at least ``threshold``, best first; the best one if none does."""
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    chosen = [code for code, s in ranked if s >= threshold and code != SELF]
    if not chosen and ranked:  # a relevant piece has a counterpart: take the likeliest
        chosen = [ranked[0][0]]
    return chosen


def _f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    tp = float(np.sum(y_true & y_pred))
    denom = float(np.sum(y_true) + np.sum(y_pred))
    return 2 * tp / denom if denom else 0.0


def best_threshold(
    y_true: np.ndarray, scores: np.ndarray, lo: float = 0.05, hi: float = 0.95
) -> float:
    """Threshold with the best F1 on (out-of-fold) scores; ties go to the one nearest 0.5."""
    y_true = np.asarray(y_true).astype(bool)
    if not y_true.any():
        return 0.5
    grid = _THRESHOLD_GRID[(lo <= _THRESHOLD_GRID) & (hi >= _THRESHOLD_GRID)]
    f1 = np.array([_f1(y_true, scores >= t) for t in grid])
    best = np.flatnonzero(f1 >= f1.max() - 1e-9)
    return float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])


def _decide_topics(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Topics over their thresholds; the best one when none is (a relevant piece has one)."""
    chosen = scores >= thresholds
    empty = ~chosen.any(axis=1)
    chosen[empty, np.argmax(scores[empty], axis=1)] = True
    return chosen


def topic_thresholds(gold: np.ndarray, scores: np.ndarray, shrinkage: float) -> np.ndarray:
    """One threshold per topic, each pulled toward the best shared threshold.

    A topic's own F1-optimal threshold rests on ~100 positives and over-fits: on split
    halves of the training examples, thresholds chosen on one half scored 0.851 micro-F1 on
    the other, a shared threshold 0.862, and 80 % shared / 20 % own 0.860.
    """
    grid = _THRESHOLD_GRID[(_THRESHOLD_GRID >= 0.15) & (_THRESHOLD_GRID <= 0.85)]
    gold = gold.astype(bool)

    def micro_f1(t: float) -> float:
        chosen = _decide_topics(scores, np.full(gold.shape[1], t))
        tp = np.sum(chosen & gold)
        return 2 * tp / (np.sum(chosen) + np.sum(gold)) if tp else 0.0

    shared = float(grid[int(np.argmax([micro_f1(t) for t in grid]))])
    own = np.array(
        [best_threshold(gold[:, k], scores[:, k], lo=0.15, hi=0.85) for k in range(gold.shape[1])]
    )
    return np.round(shrinkage * shared + (1 - shrinkage) * own, 3)


def _partner_f1(
    scores: Sequence[Mapping[str, float]], gold: Sequence[set[str]], threshold: float
) -> float:
    tp = fp = fn = 0
    for s, g in zip(scores, gold, strict=True):
        chosen = set(pick_partners(s, threshold))
        tp += len(chosen & g)
        fp += len(chosen - g)
        fn += len(g - chosen)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def best_partner_threshold(
    scores: Sequence[Mapping[str, float]], gold: Sequence[set[str]]
) -> float:
    """Threshold maximising micro-F1 of the partner sets chosen by :func:`pick_partners`."""
    best, best_f1 = 0.5, -1.0
    for t in _THRESHOLD_GRID:
        f1 = _partner_f1(scores, gold, t)
        if f1 > best_f1 + 1e-9 or (abs(f1 - best_f1) <= 1e-9 and abs(t - 0.5) < abs(best - 0.5)):
            best, best_f1 = float(t), f1
    return best


def _subset(labels: Labels, idx: np.ndarray) -> Labels:
    return Labels(labels.relevant[idx], labels.topics[idx], [labels.partners[i] for i in idx])


def _safe_strata(strata: Sequence[str], n_splits: int) -> list[str]:
    """Merge strata too small for the folds into their relevance class."""
    counts: dict[str, int] = {}
    for s in strata:
        counts[s] = counts.get(s, 0) + 1
    return [s if counts[s] >= n_splits else f"*|{s.split('|')[1]}" for s in strata]
