"""Near-duplicate stories: a MinHash fingerprint of each article's text, and story clusters.

The same wire dispatch reprinted by several outlets with small edits (another headline, a
sentence added or cut, the outlet's own boilerplate, a typo fixed) must become one story.

How a text becomes a fingerprint:

1. Normalise: NFKC, casefold, accents stripped from Latin letters, Arabic normalised (hamza
   carriers and alef wasla to bare alef, taa marbuta to haa, alef maqsura to yaa, harakat and
   tatweel removed, Arabic-Indic digits to 0-9), every punctuation, symbol and control character
   turned into a space, whitespace collapsed.
2. Shingle: word 3-grams. Scripts written without spaces between words (Chinese, Japanese, Thai,
   Lao, Khmer, Myanmar, Tibetan) have too few "words" for that, so such texts fall back to
   character 4-grams.
3. MinHash: 128 hash functions (a 64-bit blake2b hash of each shingle, re-mixed per function with
   the splitmix64 finaliser); each minimum is kept as its low 16 bits (b-bit MinHash).

The stored fingerprint is ``"m1:"`` followed by the 128 16-bit minima as 512 hex digits. The
fraction of equal minima between two fingerprints estimates the Jaccard similarity of the two
shingle sets (the 2**-16 chance of equal bits by accident is negligible). MinHash rather than
SimHash: it estimates a similarity with a known error (about 0.04 at 128 functions) and its
signature splits naturally into LSH bands, so clustering looks only at candidate pairs.

A text with fewer than ``MIN_WORDS`` words (``MIN_CHARS`` characters in a script without spaces)
is too little evidence: its fingerprint is ``""`` and it never clusters with anything.

``SIMILARITY_THRESHOLD`` (0.35) sits in the wide gap measured by tests/test_dedupe.py:

- edited reprints of one dispatch (English, French, Arabic, Spanish; new headline, own dateline
  and credit line, a sentence cut or added, typos): 0.55 to 0.98, median 0.72;
- real articles from ``../shared/realworld`` against a copy with a new headline, the last
  paragraph cut, a credit line and a typo: 0.68 and above; cut to the first half: 0.41 and above;
- different stories on one subject: at most 0.12 (the opening and the close of the same exercise,
  sharing a background sentence), 0.01 for two Morocco-US stories; 60 real articles from 48
  publishers: at most 0.05 over all 1,770 pairs.

The estimate's standard error is about 0.04, so both sides are several errors away. A reprint
cut to a third of the original (about 0.33) is at the edge, and a feed summary against the full
article stays apart: too little of the text is shared to call it the same story.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

VERSION = "m1"
NUM_HASHES = 128
SHINGLE_WORDS = 3
SHINGLE_CHARS = 4
MIN_WORDS = 25
MIN_CHARS = 100
SIMILARITY_THRESHOLD = 0.35
# LSH: 64 bands of 2 minima. Two texts become a candidate pair when a whole band agrees: the
# chance is 1 - (1 - J**2)**64, over 0.997 at J = 0.3, so nothing near the threshold is missed,
# while unrelated texts (J below 0.05) seldom meet; each candidate is then scored on all 128.
BANDS = 64
ROWS = NUM_HASHES // BANDS
# How far back a new article looks for a story it repeats.
RECENT_WINDOW = timedelta(days=7)

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SEEDS = np.array(
    [
        int.from_bytes(hashlib.blake2b(f"atlaswatch-minhash-{i}".encode(), digest_size=8).digest(), "big")
        for i in range(NUM_HASHES)
    ],
    dtype=np.uint64,
)

# Punctuation, symbols, separators and control characters become spaces, and format characters
# (soft hyphen, zero-width joiners, direction marks) vanish; letters, digits and combining marks
# (Devanagari vowel signs, for instance) stay inside their words.
_SPACES = {
    cp: None if category == "Cf" else " "
    for cp in range(0x30000)
    if (category := unicodedata.category(chr(cp)))[0] in "PSZ" or category in ("Cc", "Cf", "Co")
}
_ARABIC = {
    0x0671: "ا",  # alef wasla
    0x0629: "ه",  # taa marbuta
    0x0649: "ي",  # alef maqsura
    0x06CC: "ي",  # Persian yeh
    0x06A9: "ك",  # keheh
    0x0640: None,  # tatweel
    **{0x0660 + d: str(d) for d in range(10)},  # Arabic-Indic digits
    **{0x06F0 + d: str(d) for d in range(10)},  # Extended Arabic-Indic digits
}
_TABLE = {**_SPACES, **_ARABIC}
# After NFD: combining marks on Latin letters (accents), and Arabic marks (harakat, shadda,
# sukun, the hamza and madda that NFD splits off أ إ آ ؤ ئ, superscript alef, Quranic marks).
_LATIN_MARKS = re.compile(r"(?<=[a-z\u00c0-\u024f\u1e00-\u1eff])[\u0300-\u036f]+")
_ARABIC_MARKS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_UNSEGMENTED = re.compile(
    r"[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff"
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]"
)


def normalise(text: str) -> str:
    """Casefolded, accent-free (Latin), Arabic-normalised text with single spaces between words."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = unicodedata.normalize("NFD", text)
    text = _ARABIC_MARKS.sub("", _LATIN_MARKS.sub("", text))
    text = unicodedata.normalize("NFC", text).translate(_TABLE)
    return " ".join(text.split())


def shingles(title: str, text: str) -> set[str]:
    """Word 3-grams of title and text (character 4-grams for unspaced scripts); empty when too short."""
    normal = normalise(f"{title or ''}\n{text or ''}")
    words = normal.split()
    unspaced = len(_UNSEGMENTED.findall(normal))
    if unspaced > len(words):
        chars = normal.replace(" ", "")
        if len(chars) < MIN_CHARS:
            return set()
        return {chars[i : i + SHINGLE_CHARS] for i in range(len(chars) - SHINGLE_CHARS + 1)}
    if len(words) < MIN_WORDS:
        return set()
    return {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def _hash64(shingle: str) -> int:
    return int.from_bytes(hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest(), "big")


def minhash(items: Iterable[str]) -> np.ndarray:
    """The 128 16-bit minima of a non-empty set of shingles."""
    values = np.fromiter((_hash64(item) for item in items), dtype=np.uint64)
    z = values[:, None] ^ _SEEDS[None, :]
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z ^= z >> np.uint64(31)
    return (z.min(axis=0) & np.uint64(0xFFFF)).astype(np.uint16)


def fingerprint(title: str, text: str) -> str:
    """``"m1:"`` + 512 hex digits of MinHash, or ``""`` when the text is too short to judge."""
    found = shingles(title, text)
    if not found:
        return ""
    return f"{VERSION}:{minhash(found).astype('>u2').tobytes().hex()}"


def _minima_bytes(value: str | None) -> bytes | None:
    if not value or not value.startswith(f"{VERSION}:"):
        return None
    try:
        raw = bytes.fromhex(value[len(VERSION) + 1 :])
    except ValueError:
        return None
    return raw if len(raw) == 2 * NUM_HASHES else None


def signature(value: str | None) -> np.ndarray | None:
    """The minima inside a fingerprint; None for an empty, foreign or damaged one."""
    raw = _minima_bytes(value)
    return None if raw is None else np.frombuffer(raw, dtype=">u2").astype(np.uint16)


def similarity(a: str | None, b: str | None) -> float:
    """Estimated Jaccard similarity of the two texts' shingles; 0.0 when either cannot be judged."""
    first, second = signature(a), signature(b)
    if first is None or second is None:
        return 0.0
    return float(np.count_nonzero(first == second)) / NUM_HASHES


def similar(a: str | None, b: str | None, threshold: float = SIMILARITY_THRESHOLD) -> bool:
    """Whether two fingerprints are the same story."""
    return similarity(a, b) >= threshold


def _band_keys(signatures: np.ndarray) -> np.ndarray:
    """(n, BANDS) integers: each LSH band's number and its ROWS minima, packed into one uint64."""
    minima = signatures.astype(np.uint64).reshape(len(signatures), BANDS, ROWS)
    packed = np.zeros((len(signatures), BANDS), dtype=np.uint64)
    for row in range(ROWS):
        packed = (packed << np.uint64(16)) | minima[:, :, row]
    return packed | (np.arange(BANDS, dtype=np.uint64) << np.uint64(16 * ROWS))


class _StoredIndex:
    """LSH index of the stored articles, built in one go: band keys sorted, looked up by bisection."""

    def __init__(self, recent: Sequence[Mapping[str, Any]]):
        raws, self.clusters = [], []
        for article in recent:
            raw = _minima_bytes(article.get("fingerprint"))
            if raw is not None:
                raws.append(raw)
                self.clusters.append(str(article.get("cluster_id") or article["id"]))
        self.signatures = np.frombuffer(b"".join(raws), dtype=">u2").astype(np.uint16).reshape(-1, NUM_HASHES)
        keys = _band_keys(self.signatures).ravel()
        order = np.argsort(keys, kind="stable")
        self.keys, self.owners = keys[order], order // BANDS

    def best(self, sig: np.ndarray, keys: np.ndarray) -> tuple[int, str]:
        """(equal minima, cluster) of the best stored candidate; (0, "") when none shares a band."""
        low = np.searchsorted(self.keys, keys, "left")
        high = np.searchsorted(self.keys, keys, "right")
        if int((high - low).sum()) > len(self.signatures) // 4:
            # A crowded neighbourhood (many copies of one text): comparing with every row is cheaper.
            candidates = np.arange(len(self.signatures))
        else:
            hits = np.flatnonzero(high > low)
            if not len(hits):
                return 0, ""
            candidates = np.unique(np.concatenate([self.owners[low[b] : high[b]] for b in hits]))
        scores = np.count_nonzero(self.signatures[candidates] == sig, axis=1)
        top = int(np.argmax(scores))
        return int(scores[top]), self.clusters[int(candidates[top])]


def _moment(article: Mapping[str, Any]) -> float:
    """Seconds since the epoch of the article's publication (else fetch); unknown sorts last."""
    for key in ("published", "fetched_at"):
        value = article.get(key)
        if not value:
            continue
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return float("inf")


def assign_clusters(
    new: Sequence[Mapping[str, Any]],
    recent: Sequence[Mapping[str, Any]],
    threshold: float = SIMILARITY_THRESHOLD,
) -> dict[str, str]:
    """Story cluster of each new article: new id -> cluster id (see StoryIndex.assign)."""
    return StoryIndex(recent, threshold).assign(new)


class StoryIndex:
    """The stories a batch of new articles may repeat: the recent stored articles (`recent`
    holds id, fingerprint and cluster_id), plus those added with `remember` since. A poll
    loads the stored ones once and remembers each batch once it is stored, rather than
    reading the whole recent window again for every feed."""

    def __init__(self, recent: Sequence[Mapping[str, Any]], threshold: float = SIMILARITY_THRESHOLD):
        self.needed = threshold * NUM_HASHES
        self._stored = _StoredIndex(recent)
        self._signatures: list[np.ndarray] = []
        self._clusters: list[str] = []
        self._buckets: dict[int, list[int]] = {}

    def assign(self, new: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """Story cluster of each new article: new id -> cluster id.

        `new` holds dicts with id, fingerprint and published/fetched_at. A new article joins the
        cluster of its most similar earlier article (known to the index, or new in this batch
        and published before it) when the similarity reaches the threshold; otherwise it starts
        a cluster named by its own id. Articles without a usable fingerprint stay alone.
        Candidates come from LSH buckets, so the cost grows with the number of articles, not
        with the number of pairs. The index itself is left as it was.
        """
        ordered = sorted(new, key=lambda article: (_moment(article), str(article["id"])))
        batch = StoryIndex([], 0.0)
        assigned: dict[str, str] = {}
        for article in ordered:
            identifier = str(article["id"])
            sig = signature(article.get("fingerprint"))
            if sig is None:
                assigned[identifier] = identifier
                continue
            keys = _band_keys(sig[None, :])[0]
            score, cluster = max(self._best(sig, keys), batch._best(sig, keys), key=lambda found: found[0])
            cluster = cluster if score >= self.needed else identifier
            assigned[identifier] = cluster
            batch._add(sig, keys, cluster)
        return assigned

    def remember(self, articles: Sequence[Mapping[str, Any]]) -> None:
        """Add stored articles (id, fingerprint, cluster_id) for the batches that follow."""
        for article in articles:
            sig = signature(article.get("fingerprint"))
            if sig is not None:
                self._add(sig, _band_keys(sig[None, :])[0], str(article.get("cluster_id") or article["id"]))

    def _add(self, sig: np.ndarray, keys: np.ndarray, cluster: str) -> None:
        index = len(self._clusters)
        self._signatures.append(sig)
        self._clusters.append(cluster)
        for key in keys.tolist():
            self._buckets.setdefault(key, []).append(index)

    def _best(self, sig: np.ndarray, keys: np.ndarray) -> tuple[int, str]:
        """(equal minima, cluster) of the best candidate, stored or remembered; (0, "") for none."""
        score, cluster = self._stored.best(sig, keys)
        candidates = sorted({index for key in keys.tolist() for index in self._buckets.get(key, ())})
        if candidates:
            scores = np.count_nonzero(np.array([self._signatures[i] for i in candidates]) == sig, axis=1)
            top = int(np.argmax(scores))
            if scores[top] > score:
                score, cluster = int(scores[top]), self._clusters[candidates[top]]
        return score, cluster
