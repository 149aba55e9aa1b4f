"""Analysts' corrections of the classifier's tags."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlite_utils

from classifiers.taxonomy import TOPICS, is_partner_code
from storage.feeds import iso
from storage.labels import add_label, training_examples


class LabelError(Exception):
    """A label that does not follow the taxonomy, or names an unknown article."""


def validate_label(
    relevant: bool, partners: Sequence[str], topics: Sequence[str]
) -> tuple[list[str], list[str]]:
    codes = [code.strip().upper() for code in partners if code.strip()]
    bad_codes = [code for code in codes if not is_partner_code(code)]
    if bad_codes:
        raise LabelError(
            f"not partner codes: {', '.join(bad_codes)}; use ISO 3166-1 alpha-2 (US, FR, ES, ...) "
            "or NATO, EU, UN, AU; Morocco (MA) is never a partner"
        )
    names = [topic.strip().lower() for topic in topics if topic.strip()]
    unknown = [name for name in names if name not in TOPICS]
    if unknown:
        raise LabelError(
            f"unknown topic(s) {', '.join(unknown)}; the topics are: {', '.join(TOPICS)}"
        )
    if relevant and not codes:
        raise LabelError("a relevant article needs at least one --partner (Morocco's counterpart)")
    if relevant and not names:
        raise LabelError(f"a relevant article needs at least one --topic ({', '.join(TOPICS)})")
    if not relevant and (codes or names):
        raise LabelError("a not-relevant article takes no partner or topic")
    return codes, names


def label_article(
    db: sqlite_utils.Database,
    article_id: str,
    relevant: bool,
    partners: Sequence[str],
    topics: Sequence[str],
    now: datetime,
) -> int:
    """Store the label; returns how many training labels there are now."""
    codes, names = validate_label(relevant, partners, topics)
    try:
        add_label(
            db, article_id=article_id, relevant=relevant, partners=codes, topics=names, at=iso(now)
        )
    except KeyError as error:
        raise LabelError(
            f"no stored article {article_id!r}; ids are shown by the poll summary and "
            "`atlaswatch status`"
        ) from error
    return len(training_examples(db))
