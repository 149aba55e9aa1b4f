"""Text handling shared by every classifier stage: normalisation, tokens, sentences, language.

A document is split into sentences on its original text, and each sentence is normalised
on its own: evidence can then quote the article as it was written, while matching and
features see one canonical spelling.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Marks that writers add or omit freely: Latin combining accents (after NFKD, "é" is "e" and
# an accent), Arabic harakat, shadda, sukun, hamza marks, superscript alef, Quranic signs,
# and the tatweel that stretches words in headlines.
_MARKS_RE = re.compile(
    "[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640]"
)
# NFKD has already split hamza from alef (أ إ آ -> ا + mark); these are the letters it keeps:
# alef wasla, taa marbuta and alef maqsura, spelt inconsistently across outlets.
_LETTERS = str.maketrans({"ٱ": "ا", "ة": "ه", "ى": "ي", "’": "'", "‘": "'", "ʼ": "'"})
# Letters only: digits never become tokens, so numbers and dates carry no weight (they
# date a corpus rather than describe a topic); "F-16" leaves "F".
TOKEN_RE = re.compile(r"[^\W\d_]+")
# Sentence ends inside a line: Latin and Arabic end punctuation, closing quotes, a space.
# Lines are found first: a regex that also looked for line breaks would try to match at
# every character and cost twice as much.
_LINE_RE = re.compile(r"[^\n]+")
_SENTENCE_END_RE = re.compile(r"[.!?؟؛…][\"'»”)\]]*[ \t]+")
# Abbreviations whose final full stop does not end a sentence.
_ABBREVIATION_RE = re.compile(
    r"(?:\b[A-Z]\.|\b(?:Mr|Mrs|Ms|Dr|Gen|Lt|Col|Maj|Capt|Adm|Sgt|St|No|Mme|Sr|Sra|Gral|Jr|Vs)\.)$"
)

# py3langid labels that, in a news feed about the Maghreb, are one of our four languages:
# Arabic dialects, and the neighbours it confuses short news text with (Nigerian Pidgin for
# English, Aragonese and Extremaduran for Spanish, measured on the corpus).
LANGUAGE_ALIASES = {
    **dict.fromkeys(("ary", "arz", "apc", "acm", "ajp", "aeb", "arq", "afb"), "ar"),
    "pcm": "en",
    "an": "es",
    "ext": "es",
    "zxx": "und",
}
UNDETERMINED = "und"
_ARABIC_LETTER_RE = re.compile("[\u0621-\u064a]")
# Letters of the Arabic script used by other languages (پ چ ژ گ ک ی ے ٹ ڈ ڑ ں ھ ۆ ێ ڵ ...).
_OTHER_ARABIC_SCRIPT_RE = re.compile("[\u067e-\u06d3\u06d5-\u06ff\u0750-\u077f\ufb50-\ufdff]")


def fold(text: str) -> str:
    """Remove accents and Arabic diacritics/tatweel and unify Arabic letter variants.

    Letter case is kept (the gazetteer needs it to tell "US" from "us"); everything else
    that varies between spellings of one word is removed: é -> e, ñ -> n, أ/إ/آ/ٱ -> ا,
    ة -> ه, ى -> ي.
    """
    if text.isascii():  # nothing to fold, and most English text is pure ASCII
        return text
    return _MARKS_RE.sub("", unicodedata.normalize("NFKD", text)).translate(_LETTERS)


def normalize(text: str) -> str:
    """Canonical form: :func:`fold` then lower case."""
    return fold(text).lower()


def words(text: str) -> list[str]:
    """Normalised letter-only words of ``text``: the input of the n-gram features."""
    return TOKEN_RE.findall(normalize(text))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``: lines, cut after ., !, ?, ؟, ؛ or …
    (with any closing quote) and a space, except after abbreviations; blanks dropped."""
    spans: list[tuple[int, int]] = []
    for line in _LINE_RE.finditer(text):
        start, stop = line.start(), line.end()
        for match in _SENTENCE_END_RE.finditer(text, start, stop):
            end = match.start() + 1
            if text[end - 1] == "." and _ABBREVIATION_RE.search(text, max(0, end - 8), end):
                continue  # "U.S. troops", "Gen. Langley": not a sentence end
            close = match.start() + len(match.group().rstrip())
            if text[start:close].strip():
                spans.append((start, close))
            start = match.end()
        if text[start:stop].strip():
            spans.append((start, stop))
    return spans


@dataclass(slots=True)
class TokenizedDocument:
    """A document as the classifier sees it.

    ``sentences`` are the original sentence strings (title sentences first); tokens are
    parallel lists: the normalised word, its folded surface with letter case, and the
    index of its sentence.
    """

    sentences: list[str]
    n_title_sentences: int
    norms: list[str]
    surfaces: list[str]
    sentence_of: list[int]
    bounds: list[tuple[int, int]]  # token range of each sentence

    @property
    def n_tokens(self) -> int:
        return len(self.norms)


def tokenize_document(title: str, text: str) -> TokenizedDocument:
    """Split title and body into sentences and tokens (see :class:`TokenizedDocument`)."""
    sentences: list[str] = []
    norms: list[str] = []
    surfaces: list[str] = []
    sentence_of: list[int] = []
    bounds: list[tuple[int, int]] = []
    n_title = 0
    for part, is_title in ((title, True), (text, False)):
        for start, end in sentence_spans(part):
            sentence = part[start:end]
            found = TOKEN_RE.findall(fold(sentence))
            index = len(sentences)
            sentences.append(sentence)
            bounds.append((len(norms), len(norms) + len(found)))
            surfaces.extend(found)
            norms.extend(map(str.lower, found))
            sentence_of.extend([index] * len(found))
            n_title += is_title
    return TokenizedDocument(sentences, n_title, norms, surfaces, sentence_of, bounds)


def truncate(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, at a word boundary when one is near."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", max(0, max_chars - 200), max_chars)
    return text[: cut if cut > 0 else max_chars]


LANGUAGE_SAMPLE_CHARS = 200  # 99.9 % right on the corpus (with the aliases), like 3,000


def detect_language(text: str) -> str:
    """ISO 639-1 code of ``text`` by py3langid, ``"und"`` when there is nothing to judge.

    Arabic dialect labels (Moroccan ``ary``, Egyptian ``arz``...) are reported as ``ar``:
    the press writes Modern Standard Arabic and the classifier treats them alike; see
    :data:`LANGUAGE_ALIASES` for the other merged labels. The
    identifier is py3langid's shared one, which trafilatura also uses in the pipeline, so
    its 70 MB are loaded once per process.
    """
    import py3langid

    sample = text[:LANGUAGE_SAMPLE_CHARS]
    letters = sum(map(len, TOKEN_RE.findall(sample)))
    if not letters:
        return UNDETERMINED
    if _is_plain_arabic(sample, letters):
        return "ar"
    code, _ = py3langid.classify(sample)
    return LANGUAGE_ALIASES.get(code, code)


def _is_plain_arabic(sample: str, letters: int) -> bool:
    """Mostly Arabic letters and none of the letters that Persian, Urdu, Pashto, Kurdish
    or Sindhi add to the script: the one case py3langid is slow on (ten times its Latin
    cost, since every Arabic letter is two bytes of its byte-level automaton) and cannot
    answer differently, apart from dialect labels that are merged into "ar" anyway."""
    return len(
        _ARABIC_LETTER_RE.findall(sample)
    ) >= 0.6 * letters and not _OTHER_ARABIC_SCRIPT_RE.search(sample)
