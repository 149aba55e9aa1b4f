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
3. Hash each shingle once: every distinct token gets a 64-bit hash (two CRC-32s), a shingle's
   hash chains its tokens' hashes by multiplication and goes through the splitmix64 finaliser.
4. MinHash: 128 hash functions, a*h + b (mod 2**64) with odd a; each minimum is mixed again and
   kept as its low 16 bits (b-bit MinHash). Version m1 hashed every shingle with blake2b and
   re-mixed it for every function, which cost two and a half times as much as this hashing.

The stored fingerprint is ``"m2:"`` followed by the 128 16-bit minima as 512 hex digits. The
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

These ranges were measured with version m1; m2 estimates as closely (root-mean-square error
against the true Jaccard similarity 0.033 for m2, 0.034 for m1, over 312 pairs of reprints and
overlapping texts), and the tests hold both sides of the threshold. The estimate's standard
error is about 0.04, so both sides are several errors away. A reprint
cut to a third of the original (about 0.33) is at the edge, and a feed summary against the full
article stays apart: too little of the text is shared to call it the same story.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

VERSION = "m2"
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
_CHAIN = np.uint64(0x9E3779B97F4A7C15)
_CRC_SEED = 0x5BD1E995


def _seeded(name: str, count: int) -> np.ndarray:
    return np.array(
        [
            int.from_bytes(
                hashlib.blake2b(f"atlaswatch-{name}-{i}".encode(), digest_size=8).digest(), "big"
            )
            for i in range(count)
        ],
        dtype=np.uint64,
    )


_MULTIPLIERS = _seeded("minhash-a", NUM_HASHES) | np.uint64(1)
_OFFSETS = _seeded("minhash-b", NUM_HASHES)
MINHASH_BLOCK = 4096


# Punctuation, symbols, separators and control characters become spaces, and format characters
# (soft hyphen, zero-width joiners, direction marks) vanish; letters, digits and combining marks
# (Devanagari vowel signs, for instance) stay inside their words. Replaced by regular expressions
# over character classes rather than one str.translate() table, which looks every character up
# in a dict and took half of a fingerprint's time. A class above U+FFFF is matched range by
# range, so the rare characters there (emoji, mostly) are looked up one by one instead.
_SEPARATORS = {
    chr(cp): "" if category == "Cf" else " "
    for cp in range(0x30000)
    if (category := unicodedata.category(chr(cp)))[0] in "PSZ" or category in ("Cc", "Cf", "Co")
}


def _class_of(codepoints: list[int]) -> re.Pattern[str]:
    ranges, start = [], None
    for cp, following in zip(codepoints, [*codepoints[1:], -1], strict=True):
        start = cp if start is None else start
        if following != cp + 1:
            ranges.append(re.escape(chr(start)) + ("-" + re.escape(chr(cp)) if cp > start else ""))
            start = None
    return re.compile("[" + "".join(ranges) + "]")


_TO_SPACE = _class_of(
    [ord(c) for c, to in _SEPARATORS.items() if to == " " and c != " " and c <= "\uffff"]
)
_DROPPED = _class_of([ord(c) for c, to in _SEPARATORS.items() if to == "" and c <= "\uffff"])
_ASTRAL = re.compile("[\U00010000-\U0002ffff]")
_ARABIC = {
    "\u0671": "ا",  # alef wasla
    "\u0629": "ه",  # taa marbuta
    "\u0649": "ي",  # alef maqsura
    "\u06cc": "ي",  # Persian yeh
    "\u06a9": "ك",  # keheh
    "\u0640": "",  # tatweel
    **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
    **{chr(0x06F0 + d): str(d) for d in range(10)},  # Extended Arabic-Indic digits
}
_ARABIC_FORMS = _class_of(sorted(map(ord, _ARABIC)))
# After NFD: runs of combining marks, dropped after a Latin letter (accents), and Arabic marks
# (harakat, shadda, sukun, the hamza and madda that NFD splits off أ إ آ ؤ ئ, superscript alef,
# Quranic marks).
_MARK_RUNS = re.compile(r"[\u0300-\u036f]+")
_ARABIC_MARKS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_UNSEGMENTED = re.compile(
    r"[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff"
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]"
)


def normalise(text: str) -> str:
    """Casefolded, accent-free (Latin), Arabic-normalised text with single spaces between words."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = unicodedata.normalize("NFD", text)
    text = _ARABIC_MARKS.sub("", _MARK_RUNS.sub(_accents_dropped, text))
    text = _DROPPED.sub("", _TO_SPACE.sub(" ", unicodedata.normalize("NFC", text)))
    text = _ASTRAL.sub(lambda char: _SEPARATORS.get(char.group(), char.group()), text)
    text = _ARABIC_FORMS.sub(lambda form: _ARABIC[form.group()], text)
    return " ".join(text.split())


def _accents_dropped(run: re.Match[str]) -> str:
    """A run of combining marks: gone after a Latin letter (an accent), kept elsewhere."""
    before = run.string[run.start() - 1] if run.start() else ""
    latin = "a" <= before <= "z" or "\u00c0" <= before <= "\u024f" or "\u1e00" <= before <= "\u1eff"
    return "" if latin else run.group()


def _tokens(title: str, text: str) -> tuple[list[str], int]:
    """The normalised words of title and text and the shingle width (word 3-grams), or, for
    scripts without spaces between words, their characters and a width of 4; ([], 0) when there
    is too little text to judge."""
    normal = normalise(f"{title or ''}\n{text or ''}")
    words = normal.split()
    if len(_UNSEGMENTED.findall(normal)) > len(words):
        chars = list(normal.replace(" ", ""))
        return (chars, SHINGLE_CHARS) if len(chars) >= MIN_CHARS else ([], 0)
    return (words, SHINGLE_WORDS) if len(words) >= MIN_WORDS else ([], 0)


def shingles(title: str, text: str) -> set[str]:
    """Word 3-grams of title and text (character 4-grams for unspaced scripts); empty when too short."""
    tokens, width = _tokens(title, text)
    glue = " " if width == SHINGLE_WORDS else ""
    return {glue.join(tokens[i : i + width]) for i in range(len(tokens) - width + 1)}


def _splitmix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def shingle_hashes(title: str, text: str) -> np.ndarray:
    """The distinct 64-bit hashes of the text's shingles: each distinct token is hashed once
    (two CRC-32s), and a shingle's hash is its tokens' hashes chained by multiplication, mixed."""
    tokens, width = _tokens(title, text)
    if not tokens:
        return np.zeros(0, dtype=np.uint64)
    table = {}
    for token in set(tokens):
        raw = token.encode("utf-8")
        table[token] = zlib.crc32(raw) | (zlib.crc32(raw, _CRC_SEED) << 32)
    hashes = np.fromiter((table[token] for token in tokens), dtype=np.uint64, count=len(tokens))
    count = len(tokens) - width + 1
    chained = np.zeros(count, dtype=np.uint64)
    for offset in range(width):
        chained = chained * _CHAIN + hashes[offset : offset + count]
    return np.unique(_splitmix(chained))


def minhash(hashes: np.ndarray) -> np.ndarray:
    """The 128 16-bit minima of a non-empty set of shingle hashes: hash function i maps h to
    a_i * h + b_i (mod 2**64, a_i odd), and each minimum is mixed before its low 16 bits are
    kept. Long texts go in blocks, so memory stays bounded."""
    minima = np.full(NUM_HASHES, np.iinfo(np.uint64).max, dtype=np.uint64)
    for start in range(0, len(hashes), MINHASH_BLOCK):
        block = hashes[start : start + MINHASH_BLOCK, None] * _MULTIPLIERS + _OFFSETS
        np.minimum(minima, block.min(axis=0), out=minima)
    return (_splitmix(minima) & np.uint64(0xFFFF)).astype(np.uint16)


def fingerprint(title: str, text: str) -> str:
    """``"m2:"`` + 512 hex digits of MinHash, or ``""`` when the text is too short to judge."""
    hashes = shingle_hashes(title, text)
    if not len(hashes):
        return ""
    return f"{VERSION}:{minhash(hashes).astype('>u2').tobytes().hex()}"


def is_current(value: str | None) -> bool:
    """Whether a stored fingerprint was made the way this version makes them (or is empty:
    too little text, which no version can judge)."""
    return not value or value.startswith(f"{VERSION}:")


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
        self.signatures = (
            np.frombuffer(b"".join(raws), dtype=">u2").astype(np.uint16).reshape(-1, NUM_HASHES)
        )
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

    def __init__(
        self, recent: Sequence[Mapping[str, Any]], threshold: float = SIMILARITY_THRESHOLD
    ):
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
            score, cluster = max(
                self._best(sig, keys), batch._best(sig, keys), key=lambda found: found[0]
            )
            cluster = cluster if score >= self.needed else identifier
            assigned[identifier] = cluster
            batch._add(sig, keys, cluster)
        return assigned

    def remember(self, articles: Sequence[Mapping[str, Any]]) -> None:
        """Add stored articles (id, fingerprint, cluster_id) for the batches that follow."""
        for article in articles:
            sig = signature(article.get("fingerprint"))
            if sig is not None:
                self._add(
                    sig,
                    _band_keys(sig[None, :])[0],
                    str(article.get("cluster_id") or article["id"]),
                )

    def _add(self, sig: np.ndarray, keys: np.ndarray, cluster: str) -> None:
        index = len(self._clusters)
        self._signatures.append(sig)
        self._clusters.append(cluster)
        for key in keys.tolist():
            self._buckets.setdefault(key, []).append(index)

    def _best(self, sig: np.ndarray, keys: np.ndarray) -> tuple[int, str]:
        """(equal minima, cluster) of the best candidate, stored or remembered; (0, "") for none."""
        score, cluster = self._stored.best(sig, keys)
        candidates = sorted(
            {index for key in keys.tolist() for index in self._buckets.get(key, ())}
        )
        if candidates:
            scores = np.count_nonzero(
                np.array([self._signatures[i] for i in candidates]) == sig, axis=1
            )
            top = int(np.argmax(scores))
            if scores[top] > score:
                score, cluster = int(scores[top]), self._clusters[candidates[top]]
        return score, cluster
