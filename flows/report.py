"""What a person reads in the Prefect UI: the poll summary and the digest preview, as Markdown."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlite_utils

from flows.poll import FeedReport
from storage.articles import article_counts, classified_articles
from storage.feeds import feeds_needing_attention

if TYPE_CHECKING:
    from flows.digest import PreparedDigest

MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>])")
OUTCOME_LABELS = {
    "new": "new articles",
    "no_new": "nothing new",
    "not_modified": "not modified (304)",
    "unchanged": "unchanged body",
    "failed": "FAILED",
    "pending": "not reached",
}


def md(text: Any) -> str:
    """Untrusted text (titles, errors) made inert in Markdown and HTML."""
    return MD_SPECIAL.sub(r"\\\1", " ".join(str(text or "").split()))


def _link(title: str, url: str | None) -> str:
    safe = url if url and url.startswith(("http://", "https://")) else None
    return f"[{md(title)}](<{safe.replace('>', '%3E')}>)" if safe else md(title)


def poll_summary_markdown(
    db: sqlite_utils.Database,
    reports: Sequence[FeedReport],
    started: datetime,
    finished: datetime,
    model_problem: str | None,
    backlog: int,
) -> str:
    stored = sum(r.stored for r in reports)
    relevant = sum(len(r.relevant_ids) for r in reports)
    failed = [r for r in reports if r.outcome == "failed"]
    lines = [
        "# Poll summary",
        "",
        f"{started:%Y-%m-%d %H:%M:%S %Z}, {(finished - started).total_seconds():.1f} s: "
        f"**{len(reports)}** feed(s) polled, **{stored}** new article(s) stored, "
        f"**{relevant}** relevant, **{len(failed)}** feed(s) failed.",
        "",
    ]
    if model_problem:
        lines += [
            f"> **Classifier unavailable**: {md(model_problem)}",
            "> New articles were stored unclassified and will be classified by the next good run.",
            "",
        ]
    if backlog:
        lines += [f"Classified {backlog} article(s) that an earlier run stored unclassified.", ""]
    lines += [
        "## Feeds",
        "",
        "| feed | outcome | entries | new | stored | relevant | summary only | problem |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in reports:
        problem = f"{r.error_kind}: {r.error}" if r.error else r.warning
        if r.moved_to:
            problem = f"moved permanently to {r.moved_to}; {problem}"
        lines.append(
            f"| {md(r.name or r.url)} | {OUTCOME_LABELS.get(r.outcome, r.outcome)} | {r.entries} | {r.new} "
            f"| {r.stored} | {len(r.relevant_ids)} | {r.fallbacks} | {md(problem)} |"
        )
    lines += ["", *_matches(db, reports), *_attention(db), *_skipped(reports)]
    counts = article_counts(db)
    lines += [
        "",
        f"Database: {counts['articles']} articles, {counts['relevant']} relevant, "
        f"{counts['pending_digest']} waiting for the next digest.",
    ]
    return "\n".join(lines) + "\n"


def _matches(db: sqlite_utils.Database, reports: Sequence[FeedReport]) -> list[str]:
    ids = [article for r in reports for article in r.relevant_ids]
    if not ids:
        return ["## New matches", "", "No new relevant article in this poll.", ""]
    lines = [
        "## New matches",
        "",
        "| article | partners | topics | score | lang |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for row in classified_articles(db, ids):
        lines.append(
            f"| {_link(row['title'], row['url'])} | {', '.join(row['partners']) or '?'} | "
            f"{', '.join(row['topics'])} | {row['score']:.2f} | {row['lang'] or ''} |"
        )
    return [*lines, ""]


def _attention(db: sqlite_utils.Database) -> list[str]:
    rows = feeds_needing_attention(db)
    if not rows:
        return []
    lines = [
        "## Feeds that need attention",
        "",
        "| feed | state | failures | last error | next poll |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for feed in rows:
        lines.append(
            f"| {md(feed['name'] or feed['url'])} | {feed['status']} | {feed['error_count']} | "
            f"{md(feed['last_error_kind'])}: {md(feed['last_error'])} | {feed['next_poll_at']} |"
        )
    return [*lines, ""]


def _skipped(reports: Sequence[FeedReport]) -> list[str]:
    skipped = [(r.name, item, reason) for r in reports for item, reason in r.skipped]
    if not skipped:
        return []
    lines = ["## Entries skipped", ""]
    lines += [f"- {md(name)}: {md(item)}: {md(reason)}" for name, item, reason in skipped[:30]]
    if len(skipped) > 30:
        lines.append(f"- ... and {len(skipped) - 30} more")
    return [*lines, ""]


def digest_preview_markdown(prepared: PreparedDigest, outcome: dict[str, Any]) -> str:
    if outcome.get("error"):
        state = f"**Not sent**: {md(outcome['error'])}. The items stay pending for the next digest."
    elif outcome.get("sent"):
        where = f" to `{outcome['path']}`" if outcome.get("path") else ""
        state = f"**Sent** via {outcome.get('transport')}{where}."
    else:
        state = "**Dry run**: nothing was sent or marked."
    lines = [f"# {md(prepared.subject)}", "", state, ""]
    for group in prepared.groups:
        lines += [f"## {md(group.label)} ({len(group.items)})", ""]
        for item in group.items:
            also = (
                f" — also reported by {', '.join(md(o) for o, _ in item.also_reported_by)}"
                if item.also_reported_by
                else ""
            )
            lines.append(
                f"- {_link(item.title, item.url)} — {md(item.outlet)}, {item.published}; "
                f"topics: {md(', '.join(item.topics))}{also}"
            )
            if item.evidence:
                lines.append(f"  > {md(item.evidence)}")
        lines.append("")
    return "\n".join(lines) + "\n"
