"""The partner gazetteer: surface forms in four languages that point to a state or organisation.

It only proposes candidates. Whether a candidate is Morocco's counterpart is decided by the
learned scorer in :mod:`classifiers.partners`, so an entry here costs little when it is named
in passing, and a country never seen in training is still proposed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from classifiers.text import TokenizedDocument, tokenize_document, words

GAZETTEER_PATH = Path(__file__).parent / "data" / "gazetteer.json"
SELF = "MA"  # Morocco's own side: context for the scorer, never a partner
KINDS = ("state", "org", "self")
TERM_TYPES = ("name", "demonym", "capital", "institution", "official", "programme")
LANGS = ("en", "fr", "ar", "es")

# Case rules, chosen per term when the index is built:
ANY_CASE = 0  # "français", Arabic script: no case to check
CAPITALISED = 1  # "Turkey", "Otan": the text's first letter must be upper case too
ALL_CAPS = 2  # "US", "UN", "AU", "FAR": every matched token must be upper case

# Place names that contain a country's name but are not that country: matched first (longest
# match wins) and then dropped, so "Gulf of Guinea" proposes nobody and "océan Indien" is
# not India.
BLOCKERS: tuple[str, ...] = (
    "Gulf of Guinea",
    "Golfe de Guinée",
    "golfe de Guinée",
    "Golfo de Guinea",
    "خليج غينيا",
    "Indian Ocean",
    "océan Indien",
    "Océan Indien",
    "océano Índico",
    "Océano Índico",
    "المحيط الهندي",
    "Papua New Guinea",
    "Papouasie-Nouvelle-Guinée",
    "New Mexico",
    "Nouveau-Mexique",
    "Nuevo México",
    "Mexico City",
    "Washington Post",
    "New Jersey",
    "Gulf of Oman",
    "golfe d'Oman",
    "Golfo de Omán",
    "خليج عمان",
)
_BLOCKER = "blocker"
_HEAD_CACHE_LIMIT = 50_000

# Arabic proclitics glued to the next word: wa-/fa- (and), bi-/li-/ka- (with, to, like).
_CONJUNCTIONS = ("و", "ف")
_PREPOSITIONS = ("ب", "ل", "ك")


class GazetteerError(ValueError):
    """The gazetteer file is missing or malformed."""


class Entry(NamedTuple):
    """What one indexed term points to."""

    code: str
    kind: str
    term_type: str
    case_rule: int


class Mention(NamedTuple):
    """One match of a gazetteer term: which code, how it was named, and where (tokens)."""

    code: str
    kind: str
    term_type: str
    token: int
    n_tokens: int
    sentence: int
    proclitic: str = ""  # Arabic letters stripped from the first word ("ب": "in")


def case_rule(term: str) -> int:
    """How strictly the text's letter case must agree with ``term`` (see the constants)."""
    letters = [ch for ch in term if ch.isalpha()]
    if not letters or not letters[0].isascii():
        return ANY_CASE
    if all(ch.isupper() for ch in letters) and len(letters) <= 3:
        return ALL_CAPS
    return CAPITALISED if letters[0].isupper() else ANY_CASE


def _case_ok(rule: int, surfaces: Sequence[str]) -> bool:
    if rule == ALL_CAPS:
        return all(s.isupper() for s in surfaces)
    if rule == CAPITALISED:
        return surfaces[0][0].isupper()
    return True


def _is_arabic(word: str) -> bool:
    return "\u0600" <= word[0] <= "\u06ff"


def arabic_variants(word: str) -> list[str]:
    """``word`` and the forms left after removing the proclitics glued to it.

    "والمغرب" -> "المغرب"; "للولايات" -> "الولايات" (li + al- contracts to "لل");
    "بفرنسا" -> "فرنسا". Only for matching: the candidates are looked up in the index,
    so a wrong strip of a word that really begins with ب or ل simply finds nothing.
    """
    variants = [word]
    if not _is_arabic(word):
        return variants
    stems = [word]
    if word.startswith(_CONJUNCTIONS) and len(word) > 3:
        stems.append(word[1:])
    for stem in stems:
        if stem.startswith("لل") and len(stem) > 4:
            variants.append("ال" + stem[2:])
        elif stem.startswith(_PREPOSITIONS) and len(stem) > 3:
            variants.append(stem[1:])
        if stem is not word:
            variants.append(stem)
    return list(dict.fromkeys(variants))


def _degenerate(term: str, key: tuple[str, ...]) -> bool:
    """A model name that loses its meaning without digits: tokens drop digits, so "F-16"
    would match every capital F, "Su-35" the Spanish "Su", "K2" any K. Names with a word of
    three letters or more survive ("F-16 Viper" -> "f viper")."""
    return any(ch.isdigit() for ch in term) and max(len(w) for w in key) < 3


def _proclitic(word: str, head: str) -> str:
    """Letters glued before ``head`` in ``word`` ("بفرنسا", "فرنسا" -> "ب")."""
    if word == head:
        return ""
    if head.startswith("ال") and word.endswith(head[2:]) and "لل" in word[:3]:
        return word[: word.index("لل") + 1]  # li + al- written "لل"
    return word[: len(word) - len(head)]


class Gazetteer:
    """An index of (code, kind, term type, term) rows with longest-match lookup over tokens."""

    def __init__(self, rows: Iterable[Sequence[str]]) -> None:
        self.rows: list[tuple[str, str, str, str]] = [
            (str(c), str(k), str(t), str(term)) for c, k, t, term in rows
        ]

    def to_tsv(self) -> str:
        """The rows as tab-separated lines (how a fitted model stores its gazetteer)."""
        return "\n".join("\t".join(row) for row in self.rows)

    @classmethod
    def from_tsv(cls, data: str) -> Gazetteer:
        return cls(line.split("\t") for line in data.splitlines() if line)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Mapping]) -> Gazetteer:
        """Build from the JSON structure of ``gazetteer.json`` (see module docstring)."""
        rows: list[tuple[str, str, str, str]] = []
        for code, entity in data.items():
            kind = entity.get("kind", "state") if isinstance(entity, Mapping) else None
            if kind not in KINDS:
                raise GazetteerError(f"gazetteer entry {code!r}: kind must be one of {KINDS}")
            for lang in LANGS:
                for term_type, terms in (entity.get(lang) or {}).items():
                    rows.extend((code, kind, term_type, t) for t in terms if t and t.strip())
        return cls(rows)

    @classmethod
    def from_file(cls, path: str | Path = GAZETTEER_PATH) -> Gazetteer:
        """Load ``gazetteer.json``; raises :class:`GazetteerError` with what to fix."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise GazetteerError(f"no gazetteer at {path}: restore classifiers/data/") from exc
        except json.JSONDecodeError as exc:
            raise GazetteerError(f"gazetteer {path} is not valid JSON: {exc}") from exc
        return cls.from_mapping(data)

    @cached_property
    def kinds(self) -> dict[str, str]:
        """Kind of every code: ``state``, ``org`` or ``self``."""
        return {code: kind for code, kind, _, _ in self.rows}

    @cached_property
    def _index(self) -> dict[tuple[str, ...], list[Entry]]:
        index: dict[tuple[str, ...], list[Entry]] = {}
        for code, kind, term_type, term in self.rows:
            key = normalised_key(term)
            if not key or _degenerate(term, key):
                continue
            entry = Entry(code, kind, term_type, case_rule(term))
            entries = index.setdefault(key, [])
            if entry not in entries:
                entries.append(entry)
        for term in BLOCKERS:
            # Spellings that share a key ("océan Indien", "Océan Indien") block under the
            # most lenient case rule among them, not whichever came last.
            key, rule = normalised_key(term), case_rule(term)
            known = index.get(key)
            if known and known[0].kind == _BLOCKER:
                rule = min(rule, known[0].case_rule)
            index[key] = [Entry("", _BLOCKER, _BLOCKER, rule)]
        return index

    @cached_property
    def _first_words(self) -> frozenset[str]:
        """The words terms begin with (the lengths to try come from _pairs and _singles)."""
        return frozenset(key[0] for key in self._index)

    def find(self, doc: TokenizedDocument) -> list[Mention]:
        """Every longest, non-overlapping gazetteer match in ``doc``, left to right."""
        hits = self._hit_words(doc.norms)
        if not hits:
            return []
        pairs, singles, norms = self._pairs, self._singles, doc.norms
        n_tokens, next_free = len(norms), 0
        mentions: list[Mention] = []
        for i in [i for i, word in enumerate(norms) if word in hits]:
            if i < next_free:
                continue  # inside the previous match
            # Most heads ("the", "de", "la") start only multi-word terms: checking the pair
            # of words first rejects nearly all of them at the cost of one lookup.
            pair_next = norms[i + 1] if i + 1 < n_tokens else ""
            heads = hits[norms[i]]
            if len(heads) > 1:  # an Arabic word and its forms without proclitics
                heads = tuple(h for h in heads if h in singles or (h, pair_next) in pairs)
            elif heads[0] not in singles and (heads[0], pair_next) not in pairs:
                continue
            if heads:
                next_free = i + self._match_at(doc, i, heads, pair_next, mentions)
        return mentions

    def _hit_words(self, norms: list[str]) -> dict[str, tuple[str, ...]]:
        """The document's distinct words that can begin a term, with the forms that do."""
        cache = self._head_cache
        words = set(norms)
        for word in words.difference(cache):
            if len(cache) >= _HEAD_CACHE_LIMIT:
                break
            cache[word] = self._heads(word)
        return {w: heads for w in words if (heads := cache[w] if w in cache else self._heads(w))}

    @cached_property
    def _pairs(self) -> dict[tuple[str, str], tuple[int, ...]]:
        """For each pair of first words, the lengths of the terms it starts, longest first."""
        lengths: dict[tuple[str, str], set[int]] = {}
        for key in self._index:
            if len(key) > 1:
                lengths.setdefault((key[0], key[1]), set()).add(len(key))
        return {pair: tuple(sorted(n, reverse=True)) for pair, n in lengths.items()}

    @cached_property
    def _any_case(self) -> frozenset[tuple[str, ...]]:
        """Keys whose every entry matches in any letter case: no case to check."""
        return frozenset(
            key
            for key, entries in self._index.items()
            if all(e.case_rule == ANY_CASE for e in entries)
        )

    @cached_property
    def _singles(self) -> frozenset[str]:
        return frozenset(key[0] for key in self._index if len(key) == 1)

    @cached_property
    def _head_cache(self) -> dict[str, tuple[str, ...]]:
        return {}

    def _heads(self, word: str) -> tuple[str, ...]:
        """Forms of ``word`` (itself, or without Arabic proclitics) that begin a term."""
        return tuple(v for v in arabic_variants(word) if v in self._first_words)

    def _match_at(
        self,
        doc: TokenizedDocument,
        i: int,
        heads: tuple[str, ...],
        pair_next: str,
        out: list[Mention],
    ) -> int:
        """Append the longest match starting at token ``i`` (followed by ``pair_next``); return
        its length (0: none). Only the lengths of terms that go on with ``pair_next`` are tried."""
        index, n_tokens = self._index, len(doc.norms)
        lengths = (
            self._lengths_after(heads[0], pair_next)
            if len(heads) == 1
            else sorted({n for h in heads for n in self._lengths_after(h, pair_next)}, reverse=True)
        )
        for length in lengths:
            if i + length > n_tokens:
                continue
            tail = tuple(doc.norms[i + 1 : i + length]) if length > 1 else ()
            for head in heads:
                key = (head, *tail)
                entries = index.get(key)
                if not entries:
                    continue
                if key not in self._any_case:
                    surfaces = doc.surfaces[i : i + length]
                    entries = [e for e in entries if _case_ok(e.case_rule, surfaces)]
                if entries:
                    self._append(doc, i, length, head, entries, out)
                    return length
        return 0

    def _lengths_after(self, head: str, pair_next: str) -> tuple[int, ...]:
        longer = self._pairs.get((head, pair_next), ())
        return (*longer, 1) if head in self._singles else longer

    @staticmethod
    def _append(
        doc: TokenizedDocument,
        i: int,
        length: int,
        head: str,
        entries: list[Entry],
        out: list[Mention],
    ) -> None:
        sentence, clitic = doc.sentence_of[i], _proclitic(doc.norms[i], head)
        codes: set[str] = set()
        for e in entries:  # one mention per code, even if several forms agree
            if e.kind != _BLOCKER and e.code not in codes:
                codes.add(e.code)
                out.append(Mention(e.code, e.kind, e.term_type, i, length, sentence, clitic))

    def find_in_text(self, text: str, title: str = "") -> list[Mention]:
        """Convenience for :meth:`find` over raw strings."""
        return self.find(tokenize_document(title, text))

    def candidates(self, text: str) -> list[str]:
        """Distinct codes named in ``text`` other than Morocco's own side, by first mention."""
        return list(dict.fromkeys(m.code for m in self.find_in_text(text) if m.kind != "self"))


def normalised_key(term: str) -> tuple[str, ...]:
    """The index key of a term: its normalised words."""
    return tuple(words(term))
