"""Which pending articles go in a digest, and how they are grouped: one story once, by partner."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

SNIPPET_CHARS = 280
UNCLEAR_PARTNER = "Partner unclear"


@dataclass
class DigestItem:
    title: str
    url: str | None
    outlet: str
    published: str
    partners: list[str]
    topics: list[str]
    snippet: str
    evidence: str
    lang: str
    article_ids: list[str]
    also_reported_by: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass
class DigestGroup:
    partner: str
    label: str
    items: list[DigestItem]


def safe_link(url: str | None) -> str | None:
    """Only http(s) links reach the email; anything else is shown as text."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def evidence_sentence(evidence: Mapping[str, Any]) -> str:
    for key in ("relevant", *sorted(evidence)):
        entry = evidence.get(key)
        if isinstance(entry, Mapping) and entry.get("sentence"):
            return snippet(str(entry["sentence"]), 400)
    return ""


def _outlet(item: Mapping[str, Any]) -> str:
    return item.get("feed_name") or urlsplit(item.get("url") or "").hostname or "unknown outlet"


def _date(item: Mapping[str, Any]) -> str:
    value = item.get("published") or item.get("fetched_at") or ""
    return re.sub(r"T.*", "", value)


def build_groups(items: Sequence[Mapping[str, Any]], partner_names: Mapping[str, str]) -> list[DigestGroup]:
    """Collapse each story cluster to its first report, then group stories by their first partner."""
    stories: OrderedDict[str, list[Mapping[str, Any]]] = OrderedDict()
    for item in sorted(items, key=lambda i: (i.get("published") or i.get("fetched_at") or "", i["id"])):
        stories.setdefault(item.get("cluster_id") or item["id"], []).append(item)
    groups: dict[str, DigestGroup] = {}
    for reports in stories.values():
        first = reports[0]
        partners = list(first.get("partners") or [])
        key = partners[0] if partners else UNCLEAR_PARTNER
        story = DigestItem(
            title=first.get("title") or "(untitled)",
            url=safe_link(first.get("url")),
            outlet=_outlet(first),
            published=_date(first),
            partners=[partner_names.get(code, code) for code in partners],
            topics=[topic.replace("_", " ") for topic in first.get("topics") or []],
            snippet=snippet(first.get("text") or first.get("summary") or ""),
            evidence=evidence_sentence(first.get("evidence") or {}),
            lang=first.get("lang") or "",
            article_ids=[report["id"] for report in reports],
            also_reported_by=[(_outlet(r), safe_link(r.get("url"))) for r in reports[1:]],
        )
        label = partner_names.get(key, key)
        groups.setdefault(key, DigestGroup(partner=key, label=label, items=[])).items.append(story)
    return sorted(groups.values(), key=lambda g: (g.partner == UNCLEAR_PARTNER, -len(g.items), g.label))
