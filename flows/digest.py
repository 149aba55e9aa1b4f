"""The digest as plain steps: select pending items, render, deliver, and mark sent only on acceptance."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from functools import cache
from importlib import resources

import sqlite_utils

from alerts.render import render_digest
from alerts.selection import DigestGroup, build_groups
from alerts.send import Delivery, DeliveryError, SmtpConfig, build_message, send_smtp, write_outbox
from flows.modelstore import load_current_model
from flows.settings import Settings
from storage import digests as digest_store
from storage import transaction
from storage.articles import pending_digest_items, set_evidence
from storage.feeds import feeds_needing_attention, iso


@dataclass
class PreparedDigest:
    groups: list[DigestGroup]
    item_ids: list[str]
    subject: str
    text: str
    html: str
    message: EmailMessage

    @property
    def story_count(self) -> int:
        return sum(len(group.items) for group in self.groups)


@cache
def partner_names() -> dict[str, str]:
    """Display names for partner codes, from the classifier's gazetteer (English name forms)."""
    try:
        source = resources.files("classifiers").joinpath("data/gazetteer.json").read_text("utf-8")
        gazetteer = json.loads(source)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    names = {}
    for code, entry in gazetteer.items():
        english = (entry.get("en") or {}).get("name") or [code]
        names[code] = (
            code if code in ("NATO", "EU", "UN", "AU") and len(english[0]) > 40 else english[0]
        )
    return names


def attention_rows(db: sqlite_utils.Database) -> list[dict[str, str]]:
    rows = []
    for feed in feeds_needing_attention(db):
        if feed["status"] != "active":
            problem = feed.get("note") or f"{feed['status']}"
        else:
            problem = (
                f"{feed['error_count']} failure(s) in a row, last: {feed['last_error_kind']}: {feed['last_error']}; "
                f"next try {feed['next_poll_at']}"
            )
        rows.append({"name": feed["name"] or feed["url"], "url": feed["url"], "problem": problem})
    return rows


def add_evidence(
    db: sqlite_utils.Database, settings: Settings, items: Sequence[dict], log: Callable[[str], None]
) -> int:
    """The supporting sentences of the items that have none yet, worked out with the current
    model and stored; how many got them. Only the tags the item was stored with are explained.
    A model that cannot load leaves the digest without sentences, never without its items."""
    missing = [item for item in items if not item["evidence"]]
    if not missing:
        return 0
    try:
        model = load_current_model(settings, db)
        results = model.classify(
            [{"title": i["title"] or "", "text": i["text"] or ""} for i in missing], explain=True
        )
    except Exception as error:  # evidence is a courtesy: the digest goes out without it
        log(f"the digest goes out without supporting sentences: {error}")
        return 0
    with transaction(db):
        for item, result in zip(missing, results, strict=True):
            tags = {
                "relevant",
                *(f"partner:{p}" for p in item["partners"]),
                *(f"topic:{t}" for t in item["topics"]),
            }
            item["evidence"] = {
                key: value for key, value in result["evidence"].items() if key in tags
            }
            set_evidence(db, item["id"], item["evidence"])
    return len(missing)


def prepare_digest(
    db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    log: Callable[[str], None] = lambda _: None,
) -> PreparedDigest | None:
    """The next digest from every relevant article not yet accepted by a mail server; None when empty."""
    items = pending_digest_items(db)
    if not items:
        return None
    add_evidence(db, settings, items, log)
    groups = build_groups(items, partner_names())
    subject, text, html = render_digest(
        groups,
        generated_at=now,
        attention=attention_rows(db),
        subject_prefix=settings.email.subject_prefix,
    )
    recipients = settings.email.recipients or ("analyst@localhost",)
    message = build_message(subject, text, html, settings.email.sender, recipients, now)
    ids = [article for group in groups for item in group.items for article in item.article_ids]
    return PreparedDigest(groups, ids, subject, text, html, message)


def deliver_digest(
    db: sqlite_utils.Database, settings: Settings, prepared: PreparedDigest, now: datetime
) -> tuple[int, Delivery]:
    """Record, send, then mark sent. A failure leaves every item pending and raises DeliveryError."""
    recipients = [address.strip() for address in prepared.message["To"].split(",")]
    digest_id = digest_store.create_digest(
        db, prepared.item_ids, prepared.subject, recipients, iso(now)
    )
    email = settings.email
    try:
        if email.smtp_host:
            config = SmtpConfig(
                email.smtp_host,
                email.smtp_port,
                email.starttls,
                email.ssl,
                email.username,
                email.password,
                email.timeout,
            )
            delivery = send_smtp(prepared.message, config)
        else:
            try:
                delivery = write_outbox(prepared.message, prepared.html, email.outbox)
            except OSError as error:
                raise DeliveryError(
                    f"cannot write to the outbox {email.outbox}: {error}", retry=True
                ) from error
    except DeliveryError as error:
        digest_store.mark_failed(db, digest_id, str(error))
        raise
    digest_store.mark_sent(
        db,
        digest_id,
        at=iso(now),
        transport=delivery.transport,
        message_id=delivery.message_id,
        path=delivery.path,
        refused=delivery.refused,
    )
    return digest_id, delivery
