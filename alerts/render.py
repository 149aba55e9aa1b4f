"""Rendering a digest: pure, from grouped items to (subject, plain text, HTML)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

import jinja2

from alerts.selection import DigestGroup

HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("alerts", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


ENVIRONMENT = _environment()


def header_text(value: str) -> str:
    """Control and line-separator characters removed: a newline in a title must not break a header."""
    return " ".join(HEADER_UNSAFE.sub(" ", value).split())


def digest_subject(groups: Sequence[DigestGroup], generated_at: datetime, prefix: str) -> str:
    stories = sum(len(group.items) for group in groups)
    leaders = ", ".join(group.label for group in groups[:3])
    more = f" and {len(groups) - 3} more" if len(groups) > 3 else ""
    noun = "story" if stories == 1 else "stories"
    return header_text(
        f"{prefix} {generated_at:%d %b %Y}: {stories} new {noun} ({leaders}{more})"
    ).strip()


def render_digest(
    groups: Sequence[DigestGroup],
    *,
    generated_at: datetime,
    attention: Sequence[Mapping[str, str]] = (),
    subject_prefix: str = "[atlaswatch]",
) -> tuple[str, str, str]:
    """(subject, text, html) for the grouped stories and the feeds that need attention."""
    context = {
        "groups": groups,
        "story_count": sum(len(group.items) for group in groups),
        "generated_at": generated_at,
        "attention": list(attention),
    }
    subject = digest_subject(groups, generated_at, subject_prefix)
    text = ENVIRONMENT.get_template("digest.txt").render(subject=subject, **context)
    html = ENVIRONMENT.get_template("digest.html").render(subject=subject, **context)
    return subject, text, html
