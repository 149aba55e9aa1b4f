"""The bundled corpus, its fixed held-out split, and training.

The held-out ids live in ``data/split.json``, written once by :func:`make_split` and kept in
the repository: fitting and threshold choice only ever see the ``train`` side. Examples
added to the corpus later fall on the train side until someone decides to re-split.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from classifiers.model import TOPICS, AtlasClassifier

DATA_DIR = Path(__file__).parent / "data"
CORPUS_DIR = DATA_DIR / "corpus"
SPLIT_PATH = DATA_DIR / "split.json"
HELDOUT_FRACTION = 0.2
SPLIT_SEED = 20261122
KINDS = ("positive", "neg_passing", "neg_nodefence", "neg_domestic", "neg_world")

Split = Literal["train", "heldout", "all"]


class CorpusError(ValueError):
    """A corpus line breaks the schema of LABELLING.md, or the split file is missing."""


def corpus_files(corpus_dir: Path = CORPUS_DIR) -> list[Path]:
    """The corpus's JSON Lines files in a stable order."""
    return sorted(corpus_dir.glob("*.jsonl"))


def corpus_sha256(corpus_dir: Path = CORPUS_DIR, split_path: Path = SPLIT_PATH) -> str:
    """Digest of every corpus file and of the split: changes whenever the model should."""
    digest = hashlib.sha256()
    for path in [*corpus_files(corpus_dir), split_path]:
        if path.exists():
            digest.update(path.name.encode() + b"\x00" + path.read_bytes() + b"\x00")
    return digest.hexdigest()


def read_examples(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Parse and check JSON Lines examples; raises :class:`CorpusError` naming the line."""
    examples: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                example = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{where}: not valid JSON ({exc})") from exc
            check_example(example, where)
            if example["id"] in seen:
                raise CorpusError(f"{where}: duplicate id {example['id']!r}")
            seen.add(example["id"])
            examples.append(example)
    return examples


def check_example(example: Mapping[str, Any], where: str = "example") -> None:
    """Raise :class:`CorpusError` when ``example`` breaks the labelling rules."""
    for key, kind in (
        ("id", str),
        ("text", str),
        ("title", str),
        ("relevant", bool),
        ("partners", list),
        ("topics", list),
    ):
        if not isinstance(example.get(key), kind):
            raise CorpusError(f"{where}: field {key!r} must be {kind.__name__}")
    if not (example["text"].strip() or example["title"].strip()):
        raise CorpusError(f"{where}: title and text are both empty")
    unknown = set(example["topics"]) - set(TOPICS)
    if unknown:
        raise CorpusError(f"{where}: unknown topics {sorted(unknown)}")
    if "MA" in example["partners"]:
        raise CorpusError(f"{where}: Morocco (MA) is never a partner")
    if example["relevant"] and not (example["partners"] and example["topics"]):
        raise CorpusError(f"{where}: a relevant example needs partners and topics")
    if not example["relevant"] and (example["partners"] or example["topics"]):
        raise CorpusError(f"{where}: an irrelevant example has no partners or topics")


def _stratum(example: Mapping[str, Any]) -> str:
    return f"{example.get('lang')}|{example.get('kind', example['relevant'])}"


def make_split(
    examples: Iterable[Mapping[str, Any]],
    fraction: float = HELDOUT_FRACTION,
    seed: int = SPLIT_SEED,
) -> dict[str, Any]:
    """A held-out split stratified by language and kind (so by relevance too)."""
    strata: dict[str, list[str]] = defaultdict(list)
    for e in examples:
        strata[_stratum(e)].append(e["id"])
    rng = random.Random(seed)
    heldout: list[str] = []
    for key in sorted(strata):
        ids = sorted(strata[key])
        rng.shuffle(ids)
        heldout.extend(ids[: round(len(ids) * fraction)])
    return {
        "about": "Held-out ids of the bundled corpus, fixed once: never fit or tune on them.",
        "fraction": fraction,
        "seed": seed,
        "stratified_by": ["lang", "kind"],
        "heldout": sorted(heldout),
    }


def write_split(split: Mapping[str, Any], path: Path = SPLIT_PATH) -> None:
    path.write_text(json.dumps(split, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def heldout_ids(path: Path = SPLIT_PATH) -> frozenset[str]:
    """The fixed held-out ids; raises :class:`CorpusError` when the split file is missing."""
    try:
        return frozenset(json.loads(path.read_text(encoding="utf-8"))["heldout"])
    except FileNotFoundError as exc:
        raise CorpusError(f"no split file at {path}: restore it from the repository") from exc


def load_corpus(
    split: Split = "train", corpus_dir: Path = CORPUS_DIR, split_path: Path = SPLIT_PATH
) -> list[dict[str, Any]]:
    """The bundled corpus, or its ``train`` or ``heldout`` side under the fixed split."""
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be 'train', 'heldout' or 'all', not {split!r}")
    examples = read_examples(corpus_files(corpus_dir))
    if split == "all":
        return examples
    heldout = heldout_ids(split_path)
    keep = split == "heldout"
    return [e for e in examples if (e["id"] in heldout) == keep]


def train(
    examples: Iterable[Mapping[str, Any]], *, random_state: int = 0, **params: Any
) -> AtlasClassifier:
    """Fit a new :class:`AtlasClassifier` on labelled examples (dicts with text, title,
    lang, relevant, partners, topics). Extra keyword arguments are estimator parameters."""
    return AtlasClassifier(random_state=random_state, **params).fit(list(examples))
