"""Real articles outside the corpus, used to check the model (never to train it).

The project's ``shared/`` folder, when it sits beside the checkout, holds five real seed
articles about Morocco's defence cooperation and 60 saved news pages by other publishers
that are not about it (some name "Maroc" in their menus). Both stay in ``shared/``: they
are real publishers' text, not part of the corpus.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from classifiers.model import AtlasClassifier

SHARED_DIR = Path(os.environ.get("ATLASWATCH_SHARED", Path(__file__).parents[2] / "shared"))
_URL_LINE = re.compile(r"^\s*https?://\S+\s*$")


def seed_documents(shared_dir: Path = SHARED_DIR) -> list[dict[str, str]]:
    """The seed articles as documents: the first line that is not a URL is the title."""
    docs = []
    for path in sorted((shared_dir / "seeds").glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        body = [line for line in lines if not _URL_LINE.match(line)]
        while body and not body[0].strip():
            body.pop(0)
        title = body[0].strip() if body else ""
        docs.append({"id": path.name, "title": title, "text": "\n".join(body[1:]).strip()})
    return docs


def realworld_pages(shared_dir: Path = SHARED_DIR) -> list[Path]:
    """The saved HTML pages of ``realworld/pages``."""
    return sorted((shared_dir / "realworld" / "pages").glob("*/*.html"))


def extracted_page(path: Path) -> dict[str, str]:
    """Title and main text as the pipeline sees them (trafilatura, comments off)."""
    import trafilatura

    html = path.read_bytes()
    doc = trafilatura.bare_extraction(html, include_comments=False, with_metadata=True)
    data = doc.as_dict() if doc is not None and hasattr(doc, "as_dict") else (doc or {})
    return {"id": _page_id(path), "title": data.get("title") or "", "text": data.get("text") or ""}


def full_page(path: Path) -> dict[str, str]:
    """Every visible string of the page, menus and footers included: the worst case of a
    failed extraction (this is where "Maroc" appears in navigation bars)."""
    import lxml.html

    root = lxml.html.fromstring(path.read_bytes())
    for node in root.xpath("//script|//style|//noscript|//template"):
        node.drop_tree()
    title = " ".join((root.findtext(".//title") or "").split())
    text = "\n".join(" ".join(t.split()) for t in root.itertext() if t.strip())
    return {"id": _page_id(path), "title": title, "text": text}


def _page_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def negative_check(clf: AtlasClassifier, docs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Classify pages known to be irrelevant: which come out relevant, and the top score."""
    outputs = clf.classify(docs)
    flagged = [d["id"] for d, o in zip(docs, outputs, strict=True) if o["relevant"]]
    return {
        "n": len(docs),
        "false_positives": flagged,
        "max_score": max((o["score"] for o in outputs), default=0.0),
        "scores": {d["id"]: o["score"] for d, o in zip(docs, outputs, strict=True)},
    }


def external_report(clf: AtlasClassifier, shared_dir: Path = SHARED_DIR) -> dict[str, Any]:
    """Seeds' predictions and the negative checks on real pages, when ``shared/`` exists."""
    if not shared_dir.is_dir():
        return {}
    report: dict[str, Any] = {}
    seeds = seed_documents(shared_dir)
    if seeds:
        report["seeds"] = [
            {"file": d["id"], **{k: o[k] for k in ("relevant", "score", "partners", "topics")}}
            for d, o in zip(seeds, clf.classify(seeds), strict=True)
        ]
    pages = realworld_pages(shared_dir)
    if pages:
        report["realworld_extracted"] = negative_check(clf, [extracted_page(p) for p in pages])
        report["realworld_full_page"] = negative_check(clf, [full_page(p) for p in pages])
    return report
