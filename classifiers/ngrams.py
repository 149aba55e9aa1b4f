"""Word and character n-gram TF-IDF, built for speed and for a small, safe model file.

scikit-learn's ``TfidfVectorizer`` does the same arithmetic, but its vocabulary is a Python
dict of some 100,000 entries: skops writes such a dict node by node (minutes to save, many
seconds to load, tens of MB) and its char analyser re-slices every word of every document.
Here the vocabulary is two NumPy string arrays (one ``.npy`` each in the skops file, the
lookup dicts rebuilt on first use), and each distinct word's character n-grams are looked up
once and cached, since news text repeats the same few thousand words.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from classifiers.text import words

_CACHE_LIMIT = 50_000  # distinct words kept in the per-word n-gram cache before it is reset


def char_ngrams(word: str, low: int, high: int) -> list[str]:
    """Character n-grams of one word padded with spaces (scikit-learn's ``char_wb``)."""
    padded = f" {word} "
    size = len(padded)
    return [padded[i : i + n] for n in range(low, high + 1) for i in range(size - n + 1)]


def word_ngrams(tokens: Sequence[str], low: int, high: int) -> list[str]:
    """Word n-grams of ``tokens`` joined by a space."""
    grams: list[str] = list(tokens) if low == 1 else []
    for n in range(max(low, 2), high + 1):
        grams.extend(map(" ".join, zip(*(tokens[k:] for k in range(n)), strict=False)))
    return grams


def _select(df: Counter[str], n_docs: int, min_df: int, max_df: float, limit: int) -> list[str]:
    """Terms kept: seen in at least ``min_df`` documents and at most ``max_df`` of them."""
    ceiling = max_df * n_docs
    kept = [(count, term) for term, count in df.items() if min_df <= count <= ceiling]
    kept.sort(key=lambda item: (-item[0], item[1]))
    return sorted(term for _, term in kept[:limit])


def _idf(terms: Sequence[str], df: Counter[str], n_docs: int) -> np.ndarray:
    # Smoothed idf, as scikit-learn computes it, so the weights read the same way.
    return np.array([math.log((1 + n_docs) / (1 + df[t])) + 1.0 for t in terms], dtype=np.float64)


class NgramTfidf(TransformerMixin, BaseEstimator):
    """TF-IDF over word n-grams and within-word character n-grams of normalised text.

    Text is case-folded, Arabic-normalised and accent-folded; digits never form tokens, so
    numbers and dates carry no weight. Only the first ``max_tokens`` words of a document
    count, which keeps long features from dominating and bounds the cost of a huge page.
    Each block is L2-normalised on its own with sublinear term frequency.
    """

    def __init__(
        self,
        *,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] = (3, 5),
        min_df: int = 2,
        max_df: float = 0.6,
        max_word_features: int = 40_000,
        max_char_features: int = 60_000,
        max_tokens: int = 600,
        min_word_length: int = 2,
    ) -> None:
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.max_word_features = max_word_features
        self.max_char_features = max_char_features
        self.max_tokens = max_tokens
        self.min_word_length = min_word_length

    # -- pickling (skops): keep the arrays, drop the lookup caches -------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        return {k: v for k, v in state.items() if not k.startswith("_lookup")}

    def _tokens(self, doc: str | Sequence[str]) -> list[str]:
        """Words of one document: a raw string, or a list of words already normalised."""
        if isinstance(doc, str):
            doc = words(doc)
        elif not isinstance(doc, Sequence):
            raise TypeError(f"NgramTfidf expects strings or word lists, got {type(doc).__name__}")
        kept = [w for w in doc if len(w) >= self.min_word_length]
        return kept[: self.max_tokens]

    def fit(self, raw_documents: Iterable[str | Sequence[str]], y: object = None) -> NgramTfidf:
        """Learn the vocabularies and document frequencies of ``raw_documents``."""
        docs = [self._tokens(d) for d in raw_documents]
        if not docs:
            raise ValueError("NgramTfidf needs at least one document to fit")
        low, high = self.char_ngram_range
        word_df: Counter[str] = Counter()
        char_df: Counter[str] = Counter()
        grams_of: dict[str, list[str]] = {}
        for tokens in docs:
            word_df.update(set(word_ngrams(tokens, *self.word_ngram_range)))
            seen: set[str] = set()
            for w in set(tokens):
                if w not in grams_of:
                    grams_of[w] = char_ngrams(w, low, high)
                seen.update(grams_of[w])
            char_df.update(seen)
        n = len(docs)
        word_terms = _select(word_df, n, self.min_df, self.max_df, self.max_word_features)
        char_terms = _select(char_df, n, self.min_df, self.max_df, self.max_char_features)
        # Fixed-width unicode arrays: stored as plain .npy by skops, never as objects.
        self.word_vocabulary_ = np.array(word_terms, dtype=str)
        self.char_vocabulary_ = np.array(char_terms, dtype=str)
        self.word_idf_ = _idf(word_terms, word_df, n)
        self.char_idf_ = _idf(char_terms, char_df, n)
        self.n_docs_ = n
        return self

    def _lookups(self) -> tuple[dict[str, int], dict[str, bytes]]:
        if getattr(self, "_lookup_words", None) is None:
            self._lookup_words = {t: i for i, t in enumerate(self.word_vocabulary_.tolist())}
            self._lookup_cache: dict[str, bytes] = {}
            pairs = [t.split(" ") for t in self._lookup_words if " " in t]
            self._lookup_bigram_words = ({p[0] for p in pairs}, {p[-1] for p in pairs})
        return self._lookup_words, self._lookup_cache

    def _word_grams(self, tokens: list[str]) -> list[str]:
        """The document's word n-grams that can be in the vocabulary.

        Joining every pair of words costs more than the lookups; with the default (1, 2)
        range a pair is only joined when both words occur in some kept bigram.
        """
        if tuple(self.word_ngram_range) != (1, 2):
            return word_ngrams(tokens, *self.word_ngram_range)
        firsts, seconds = self._lookup_bigram_words
        grams = list(tokens)
        grams += [f"{a} {b}" for a, b in pairwise(tokens) if a in firsts and b in seconds]
        return grams

    def _char_ids(self, word: str, cache: dict[str, bytes]) -> bytes:
        """Column ids of the word's kept character n-grams, as packed int32 bytes.

        Bytes rather than small arrays: a third of the memory per cached word, and a
        document's ids are then one ``b"".join`` and one ``frombuffer``. The lookup is a
        binary search in the sorted vocabulary array (no 50,000-entry dict in memory): it
        only runs for a word the cache has not seen.
        """
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        vocabulary = self.char_vocabulary_
        width = vocabulary.dtype.itemsize // 4  # longest kept n-gram: longer ones cannot match
        grams = np.array(
            [g for g in char_ngrams(word, *self.char_ngram_range) if len(g) <= width],
            dtype=vocabulary.dtype,
        )
        at = np.minimum(np.searchsorted(vocabulary, grams), len(vocabulary) - 1)
        ids = at[vocabulary[at] == grams].astype(np.int32).tobytes()
        cache[word] = ids
        return ids

    def transform(self, raw_documents: Iterable[str | Sequence[str]]) -> sp.csr_matrix:
        """Sparse matrix: word block then char block, each row L2-normalised per block."""
        check_is_fitted(self, "word_idf_")
        vocab_words, cache = self._lookups()
        n_words = len(self.word_vocabulary_)
        word_rows: list[np.ndarray] = []
        char_rows: list[np.ndarray] = []
        get = cache.get
        for doc in raw_documents:
            tokens = self._tokens(doc)
            found = map(vocab_words.get, self._word_grams(tokens))
            word_rows.append(np.array([i for i in found if i is not None], dtype=np.int32))
            packed = b"".join(
                [b if (b := get(w)) is not None else self._char_ids(w, cache) for w in tokens]
            )
            char_rows.append(np.frombuffer(packed, dtype=np.int32))
        words_block = _tfidf_block(word_rows, self.word_idf_)
        chars_block = _tfidf_block(char_rows, self.char_idf_)
        matrix = sp.hstack([words_block, chars_block], format="csr")
        assert matrix.shape[1] == n_words + len(self.char_vocabulary_)
        return matrix

    def feature_name(self, column: int) -> str:
        """The name of one column, without building all of them (explanations need a handful)."""
        check_is_fitted(self, "word_idf_")
        n_words = len(self.word_vocabulary_)
        if column < n_words:
            return f"w:{self.word_vocabulary_[column]}"
        return f"c:{self.char_vocabulary_[column - n_words]}"

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """``w:<word n-gram>`` then ``c:<char n-gram>`` names, in column order."""
        check_is_fitted(self, "word_idf_")
        names = [f"w:{t}" for t in self.word_vocabulary_.tolist()]
        names += [f"c:{t}" for t in self.char_vocabulary_.tolist()]
        return np.array(names, dtype=object)


def _tfidf_block(rows: list[np.ndarray], idf: np.ndarray) -> sp.csr_matrix:
    """Rows of column ids (with repeats) -> sublinear-tf, idf-weighted, L2-normalised CSR.

    Counting each row with ``np.unique`` is about twice as fast as letting scipy sum the
    duplicates of the whole block (it sorts every row in C++).
    """
    columns, counts = [], []
    for row in rows:
        unique, count = np.unique(row, return_counts=True)
        columns.append(unique)
        counts.append(count)
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in columns], out=indptr[1:])
    indices = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int32)
    tf = np.concatenate(counts).astype(np.float64) if counts else np.zeros(0)
    data = (1.0 + np.log(tf)) * idf[indices]
    block = sp.csr_matrix((data, indices, indptr), shape=(len(rows), len(idf)))
    return normalize(block, norm="l2", copy=False)
