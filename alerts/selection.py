"""Which pending articles go in a digest, and how they are grouped: one story once, by partner."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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


def snippet(text: str, limit: int = SNIPPET_CHARS, title: str = "") -> str:
    """The opening of the text, without the headline that extracted text often starts with."""
    text = " ".join((text or "").split())
    title = " ".join(title.split())
    if title and text.startswith(title):
        text = text[len(title) :].lstrip(" .:—-")
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


def _instant(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).strip()) if value else None
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _first_seen(item: Mapping[str, Any]) -> float:
    """When a report came out, in UTC seconds: publication, else fetch; unknown sorts last.

    Dates carry different offsets, so they are compared as instants, not as strings. A date
    without a time counts as the end of that day (or the fetch, if earlier), so that a report
    timed that day is not put behind one whose hour is unknown.
    """
    raw = str(item.get("published") or "").strip()
    published, fetched = _instant(raw), _instant(item.get("fetched_at"))
    if published is not None and "T" not in raw and " " not in raw:
        end_of_day = published + timedelta(days=1, seconds=-1)
        published = min(end_of_day, fetched) if fetched and fetched >= published else end_of_day
    moment = published or fetched
    return moment.timestamp() if moment else float("inf")


def _other_outlets(reports: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    """The outlets after the first, each once: an outlet updating its own story is not another outlet."""
    seen = {_outlet(reports[0])}
    others = []
    for report in reports[1:]:
        outlet = _outlet(report)
        if outlet not in seen:
            seen.add(outlet)
            others.append((outlet, safe_link(report.get("url"))))
    return others


def build_groups(
    items: Sequence[Mapping[str, Any]], partner_names: Mapping[str, str]
) -> list[DigestGroup]:
    """Collapse each story cluster to its first report, then group stories by their first partner."""
    stories: OrderedDict[str, list[Mapping[str, Any]]] = OrderedDict()
    for item in sorted(items, key=lambda i: (_first_seen(i), i["id"])):
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
            snippet=snippet(
                first.get("text") or first.get("summary") or "", title=first.get("title") or ""
            ),
            evidence=evidence_sentence(first.get("evidence") or {}),
            lang=first.get("lang") or "",
            article_ids=[report["id"] for report in reports],
            also_reported_by=_other_outlets(reports),
        )
        label = partner_names.get(key, key)
        groups.setdefault(key, DigestGroup(partner=key, label=label, items=[])).items.append(story)
    return sorted(
        groups.values(), key=lambda g: (g.partner == UNCLEAR_PARTNER, -len(g.items), g.label)
    )
