"""One poll of one feed, as plain functions: fetch, parse, pick the new entries, fetch and extract
their pages, classify, store. The Prefect flow in `flows.pipeline` wraps these."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlite_utils

import classifiers
from flows.canonical import without_tracking
from flows.dedupe import RECENT_WINDOW, StoryIndex, fingerprint, is_current
from flows.extract import Extraction, choose_text, extract_page, is_extractable
from flows.fetch import FEED_ACCEPT, FetchError, FetchLimits, FetchResult, fetch
from flows.guard import AddressPolicy
from flows.modelstore import cached_model
from flows.parse import Entry, FeedParseError, ParsedFeed, parse_feed
from flows.settings import Settings
from flows.workers import WorkerPool, WorkFailed
from storage import feeds as feed_store
from storage import transaction
from storage.articles import (
    article_id,
    article_texts,
    fingerprints_stored_between,
    insert_articles,
    known_ids,
    last_article_row,
    recent_fingerprints,
    save_classifications,
    set_fingerprint,
    set_language,
    unclassified_articles,
)
from storage.feeds import FeedFailure, iso

logger = logging.getLogger(__name__)


@dataclass
class FeedReport:
    """What happened to one feed in one poll: the row of the poll summary."""

    url: str
    name: str
    outcome: str = "pending"  # new, no_new, not_modified, unchanged, failed
    entries: int = 0
    new: int = 0
    stored: int = 0
    relevant_ids: list[str] = field(default_factory=list)
    fallbacks: int = 0
    error_kind: str = ""
    error: str = ""
    warning: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    moved_to: str = ""


def policy_from(settings: Settings) -> AddressPolicy:
    return AddressPolicy.from_settings(
        settings.fetch.allow_private_networks, settings.fetch.allowed_networks
    )


def feed_limits(settings: Settings) -> FetchLimits:
    f = settings.fetch
    return FetchLimits(f.max_feed_bytes, f.connect_timeout, f.request_deadline, f.max_redirects)


def page_limits(settings: Settings) -> FetchLimits:
    f = settings.fetch
    return FetchLimits(f.max_page_bytes, f.connect_timeout, f.request_deadline, f.max_redirects)


def poll_interval(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.schedule.poll_every_minutes)


def fetch_feed(http: httpx.Client, feed: dict, settings: Settings) -> FetchResult:
    """Conditional GET of one feed; raises FetchError."""
    return fetch(
        http,
        feed["url"],
        feed_limits(settings),
        policy_from(settings),
        accept=FEED_ACCEPT,
        etag=feed.get("etag"),
        last_modified=feed.get("last_modified"),
    )


def body_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def parse_fetched(
    pool: WorkerPool, result: FetchResult, settings: Settings, now: datetime
) -> ParsedFeed:
    """Parse in a worker process; a hang or blow-up becomes a FeedParseError."""
    try:
        return pool.run(
            parse_feed,
            result.content,
            result.final_url,
            urgent=True,
            content_type=result.content_type,
            max_entries=settings.fetch.max_entries_per_feed,
            now=now,
        )
    except WorkFailed as error:
        kind = error.kind if error.kind in ("not_feed", "parse") else "parse"
        raise FeedParseError(
            kind, f"{result.final_url}: parsing failed: {error.message}"
        ) from error


def select_new(
    db: sqlite_utils.Database, entries: Sequence[Entry], claimed: set[str] | None = None
) -> list[Entry]:
    """Entries whose canonical URL (or dedupe key) is not stored yet, and whose article is not in
    `claimed`. A poll passes one `claimed` set to every feed it reads and the articles chosen are
    added to it, so an article two feeds carry is fetched once, for the feed read first (dedupe
    keys belong to one feed, so they never meet across feeds)."""
    ids = [article_id(entry.canonical) for entry in entries]
    known = known_ids(db, ids, [entry.dedupe_key for entry in entries]) | (claimed or set())
    new = [
        e for e, i in zip(entries, ids, strict=True) if i not in known and e.dedupe_key not in known
    ]
    if claimed is not None:
        claimed.update(article_id(entry.canonical) for entry in new)
    return new


class HostLimiter:
    """At most `total` page requests in flight, and at most `per_host` to any one host."""

    def __init__(self, per_host: int, total: int):
        self._total = threading.BoundedSemaphore(max(1, total))
        self._lock = threading.Lock()
        self._hosts: dict[str, threading.BoundedSemaphore] = defaultdict(
            lambda: threading.BoundedSemaphore(max(1, per_host))
        )

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        with self._lock:
            host = self._hosts[(urlsplit(url).hostname or "").lower()]
        with host, self._total:
            yield


def fetch_article(
    http: httpx.Client,
    pool: WorkerPool,
    entry: Entry,
    settings: Settings,
    limiter: HostLimiter,
    order: int = 0,
) -> Extraction:
    """Fetch and extract one page (extraction waits its turn in the pool by `order`); every
    failure falls back to the feed's summary with a note."""
    try:
        with limiter.slot(entry.link):
            page = fetch(http, entry.link, page_limits(settings), policy_from(settings))
    except FetchError as error:
        return choose_text(
            None, entry.summary, f"page fetch failed ({error.kind}: {error.message})"
        )
    if not is_extractable(page.content_type):
        kind = page.content_type.split(";")[0] or "unknown type"
        return Extraction(
            status="skipped",
            text=entry.summary,
            note=f"not an HTML page ({kind}); kept the feed summary",
        )
    try:
        extracted = pool.run(
            extract_page,
            page.content,
            page.content_type,
            page.final_url,
            title=entry.title,
            metadata=not (entry.title and entry.published),
            order=order,
        )
    except WorkFailed as error:
        return choose_text(
            None, entry.summary, f"extraction failed ({error.kind}: {error.message})"
        )
    return choose_text(extracted, entry.summary)


def fetch_articles(
    http: httpx.Client,
    pool: WorkerPool,
    entries: Sequence[Entry],
    feed_url: str,
    settings: Settings,
    now: datetime,
    limiter: HostLimiter | None = None,
    progress: Callable[[int, int], None] | None = None,
    order: int = 0,
) -> list[dict]:
    """Fetch and extract pages concurrently (global and per-host limits); one article dict per
    entry. Of several batches, the one with the lowest `order` is extracted first."""
    limiter = limiter or HostLimiter(
        settings.fetch.per_host_concurrency, settings.fetch.page_concurrency
    )
    done = 0
    lock = threading.Lock()

    def work(entry: Entry) -> dict:
        nonlocal done
        try:
            extraction = fetch_article(http, pool, entry, settings, limiter, order)
        except Exception as error:  # one page's surprise must not cost the batch its other pages
            logger.exception("unexpected failure on %s", entry.link)
            extraction = choose_text(
                None, entry.summary, f"unexpected error ({type(error).__name__}: {error})"
            )
        with lock:
            done += 1
            if progress:
                progress(done, len(entries))
        return article_record(entry, extraction, feed_url, now)

    with ThreadPoolExecutor(
        max_workers=max(1, min(settings.fetch.page_concurrency, len(entries)))
    ) as executor:
        return list(executor.map(work, entries))


def article_record(
    entry: Entry, extraction: Extraction, feed_url: str, now: datetime
) -> dict[str, Any]:
    identifier = article_id(entry.canonical)
    title = entry.title or extraction.title
    return {
        "id": identifier,
        "url": without_tracking(entry.link),
        "feed_url": feed_url,
        "guid": entry.guid,
        "dedupe_key": entry.dedupe_key,
        "title": title,
        "author": entry.author or extraction.author,
        "published": entry.published or (extraction.date or None),
        "fetched_at": iso(now),
        "lang": "",
        "text": extraction.text,
        "summary": entry.summary,
        "extraction_status": extraction.status,
        "extraction_note": extraction.note,
        "fingerprint": extraction.fingerprint
        if extraction.fingerprint is not None
        else fingerprint(title, extraction.text),
        "cluster_id": identifier,
    }


def classify_in_worker(docs: list[dict], model_path: Path | None) -> list[dict]:
    """Runs in a worker process, which keeps the model for the polls to come."""
    return cached_model(model_path).classify(docs)


def classification_rows(
    pool: WorkerPool, model_path: Path | None, articles: Sequence[dict], now: datetime
) -> list[dict]:
    """Classify a batch in a worker process and shape the rows for storage; sets each article's
    lang. Evidence is left to the digest (flows.digest.add_evidence), which shows it for its
    items alone: here it cost a 1,000-article poll 2 of its 13 seconds, for articles most of
    which no one reads. The batch goes ahead of waiting pages: its articles wait on it to be
    stored."""
    docs = [{"title": a["title"] or "", "text": a["text"] or ""} for a in articles]
    results = pool.run(classify_in_worker, docs, model_path, urgent=True) if docs else []
    rows = []
    for article, result in zip(articles, results, strict=True):
        article["lang"] = result["lang"]
        rows.append({"article_id": article["id"], "classified_at": iso(now), **result})
    return rows


@dataclass
class StoredStories:
    """A poll's story index, kept level with the database: before a batch is clustered it
    takes in what was stored since it last looked (the poll's own earlier batches, and any
    other process's), inside the batch's write transaction, so no story is split because two
    polls ran at once."""

    index: StoryIndex
    seen_up_to_row: int

    def catch_up(self, db: sqlite_utils.Database) -> None:
        last = last_article_row(db)
        if last > self.seen_up_to_row:
            self.index.remember(fingerprints_stored_between(db, self.seen_up_to_row, last))
            self.seen_up_to_row = last


def load_stories(db: sqlite_utils.Database, now: datetime) -> StoredStories:
    """The stories of the recent window, for clustering the articles a poll stores. Fingerprints
    an older version of atlaswatch made are made again from the stored text (and stored), so
    an upgrade does not split a story in two."""
    last = last_article_row(db)
    recent = recent_fingerprints(db, iso(now - RECENT_WINDOW), last)
    stale = {row["id"]: row for row in recent if not is_current(row["fingerprint"])}
    if stale:
        with transaction(db):
            for article in article_texts(db, list(stale)):
                renewed = fingerprint(article["title"] or "", article["text"] or "")
                set_fingerprint(db, article["id"], renewed)
                stale[article["id"]]["fingerprint"] = renewed
        logger.info(
            "made the story fingerprints of %d recent article(s) again, as this version makes them",
            len(stale),
        )
    return StoredStories(StoryIndex(recent), last)


def store_feed_poll(
    db: sqlite_utils.Database,
    feed: dict,
    result: FetchResult,
    articles: Sequence[dict],
    classifications: Sequence[dict],
    settings: Settings,
    now: datetime,
    entries_seen: int,
    stories: StoredStories | None = None,
) -> list[str]:
    """Articles (each placed in its story cluster), their classifications and the feed's health in
    one transaction; returns inserted ids. A poll passes the `stories` it keeps across its
    feeds; without them the recent window is read from the database."""
    if articles and stories is None:
        stories = load_stories(db, now)
    with transaction(db):
        if articles:
            stories.catch_up(db)
            clusters = stories.index.assign(articles)
            for article in articles:
                article["cluster_id"] = clusters[article["id"]]
        inserted = insert_articles(db, articles)
        fresh = set(inserted)
        save_classifications(db, [row for row in classifications if row["article_id"] in fresh])
        feed_store.record_success(
            db,
            feed["url"],
            now,
            poll_interval(settings),
            status=result.status,
            etag=result.headers.get("etag"),
            last_modified=result.headers.get("last-modified"),
            body_hash=body_hash(result.content) if result.content else None,
            entries_seen=entries_seen,
            articles_stored=len(inserted),
        )
    if result.moved_permanently_to:
        feed_store.move_feed(db, feed["url"], result.moved_permanently_to, now)
    return inserted


def record_feed_failure(
    db: sqlite_utils.Database,
    feed: dict,
    error: FetchError | FeedParseError,
    settings: Settings,
    now: datetime,
) -> dict:
    failure = FeedFailure(error.kind, error.message, getattr(error, "retry_after", None))
    return feed_store.record_failure(db, feed["url"], now, poll_interval(settings), failure)


class BatchClassifier:
    """Classifies the poll's batches as they arrive, each in a worker process, with the model at
    `model_path` (None: the bundled one), the one current when the poll started. A model that
    cannot load, or fails on a batch, leaves those articles unclassified (with their language)
    for a later run, and the problem is reported."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        pool: WorkerPool,
        model_path: Path | None,
        now: datetime,
        logger: logging.Logger | logging.LoggerAdapter,
    ):
        self.db, self.pool, self.model_path = db, pool, model_path
        self.now, self.logger = now, logger
        self.problem: str | None = None

    def rows(self, articles: list[dict], what: str) -> list[dict]:
        if not articles:
            return []
        if self.problem is None:
            try:
                rows = classification_rows(self.pool, self.model_path, articles, self.now)
            except WorkFailed as error:  # a refused model file, or a model that fails
                self.problem = error.message
                self.logger.error(
                    "classifier unavailable, articles of %s stored unclassified: %s",
                    what,
                    self.problem,
                )
            else:
                self.logger.info(
                    "classified %d article(s) of %s: %d relevant",
                    len(rows),
                    what,
                    sum(row["relevant"] for row in rows),
                )
                return rows
        for article in articles:
            article["lang"] = classifiers.detect_language(f"{article['title']}\n{article['text']}")
        return []

    def backlog(self) -> int:
        """Classify the articles an earlier run stored unclassified; how many were."""
        if self.problem is not None:
            return 0
        backlog = unclassified_articles(self.db)
        rows = self.rows(backlog, "articles left unclassified earlier")
        if not rows:
            return 0
        with transaction(self.db):
            save_classifications(self.db, rows)
            for article in backlog:
                set_language(self.db, article["id"], article["lang"])
        self.logger.info(
            "classified %d article(s) left unclassified by an earlier run", len(backlog)
        )
        return len(backlog)
