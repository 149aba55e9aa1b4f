"""The Prefect layer: flows `poll-feeds`, `send-digest` and `retrain-classifier` over the plain steps.

Tasks sit at batch boundaries only (one per feed fetch, one per feed's batch of pages): a task
per article would cost more than the work itself. Each batch is classified (in a worker
process) from the flow itself, with a line in the run's log: a task run there would add
Prefect's per-task cost to the thread that stores, for nothing the log does not show.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from logging import Logger, LoggerAdapter
from typing import Any

from prefect import flow, get_run_logger, serve, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.schedules import Cron, Interval
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from sqlite_utils import Database

from alerts.send import DeliveryError
from flows import poll as steps
from flows.digest import deliver_digest, prepare_digest
from flows.fetch import FetchError, FetchResult, make_client
from flows.modelstore import current_model_path, retrain, start_worker_server_with
from flows.parse import Entry, FeedParseError
from flows.report import digest_preview_markdown, poll_summary_markdown
from flows.settings import Settings, load_settings
from flows.workers import WorkerPool
from storage import feeds as feed_store
from storage import open_database
from storage.feeds import iso
from storage.runs import record_run

LoggerLike = Logger | LoggerAdapter


def _retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry timeouts, dropped connections and 5xx; never 4xx, blocked addresses or parse errors."""
    try:
        state.result()
    except FetchError as error:
        return error.transient
    except Exception:
        return False
    return False


@task(
    name="fetch-feed",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_retry_transient,
    cache_policy=NO_CACHE,
    task_run_name="fetch {feed[name]}",
)
def fetch_feed_task(http: Any, feed: dict, settings: Settings) -> FetchResult:
    return steps.fetch_feed(http, feed, settings)


@task(name="fetch-articles", cache_policy=NO_CACHE, task_run_name="articles of {feed_name}")
def fetch_articles_task(
    http: Any,
    pool: WorkerPool,
    entries: list[Entry],
    feed_url: str,
    feed_name: str,
    settings: Settings,
    now: datetime,
    limiter: steps.HostLimiter,
    progress: Any,
    order: int,
) -> list[dict]:
    return steps.fetch_articles(
        http, pool, entries, feed_url, settings, now, limiter, progress, order
    )


class Progress:
    """A progress bar in the Prefect UI over the run's units of work: each due feed read, then
    each of its new articles fetched and extracted. Feeds add their articles as they are
    parsed, so the bar cannot reach 100 % while a feed is unread. Updated at most once a second
    to spare the API, and never moved back: updates go out one at a time, and one overtaken by
    a later share is dropped."""

    def __init__(self, key: str, feeds: int):
        self.total = max(feeds, 1)
        self.done = 0
        self.shown = 0.0
        self.shown_at = time.monotonic()
        self.sent = 0.0
        self.lock = threading.Lock()
        self.sending = threading.Lock()
        self.artifact = create_progress_artifact(
            0.0, key=key, description="feeds read, then their new articles fetched and extracted"
        )

    def feed_read(self, new_articles: int) -> None:
        with self.lock:
            self.total += new_articles
        self.advance()

    def advance(self, *_: object) -> None:
        with self.lock:
            self.done += 1
            share = min(100.0 * self.done / self.total, 100.0)
            due = share > self.shown and (
                time.monotonic() - self.shown_at >= 1.0 or self.done == self.total
            )
            if due:
                self.shown, self.shown_at = share, time.monotonic()
        if due:
            self._send(share)

    def finish(self) -> None:
        """100 % once the poll is done, even when a batch failed before counting its pages."""
        self._send(100.0)

    def _send(self, share: float) -> None:
        with self.sending:
            if share > self.sent:
                update_progress_artifact(self.artifact, share)
                self.sent = share


# Feed fetches and page batches run side by side, a few at a time: each page batch has its own
# threads, bounded in turn by the run's global and per-host limits.
FEED_CONCURRENCY = 8


@flow(
    name="poll-feeds",
    log_prints=True,
    task_runner=ThreadPoolTaskRunner(max_workers=FEED_CONCURRENCY),
)
def poll_feeds(
    config: str | None = None, only: list[str] | None = None, force: bool = False
) -> dict:
    """Poll the due feeds (all active ones with force): fetch, parse, fetch and extract new pages,
    classify, store. Each feed's pages are fetched as soon as its feed is parsed, and each
    feed's articles are classified and stored as soon as its pages are in, while the other
    feeds' pages are still being fetched."""
    logger = get_run_logger()
    started = datetime.now(UTC)
    settings = load_settings(config)
    db = open_database(settings.storage.path)
    feed_store.sync_feeds(db, ((f.url, f.name) for f in settings.feeds), started)
    due = feed_store.due_feeds(db, started, only, ignore_schedule=force)
    logger.info("%d feed(s) due out of %d configured", len(due), len(settings.feeds))
    reports: dict[str, steps.FeedReport] = {
        f["url"]: steps.FeedReport(f["url"], f["name"]) for f in due
    }
    model_path = current_model_path(settings, db)  # the model of this whole poll
    # Already running when a CLI command started it; a served deployment's run starts it here.
    start_worker_server_with(model_path)
    with (
        make_client(
            settings.fetch.user_agent, settings.fetch.connect_timeout, steps.policy_from(settings)
        ) as http,
        WorkerPool(settings.fetch.worker_processes, settings.fetch.work_timeout) as pool,
    ):
        classifier = steps.BatchClassifier(db, pool, model_path, started, logger)
        # quote(): Prefect would otherwise walk these arguments looking for futures, on every call.
        fetches = {f["url"]: fetch_feed_task.submit(http, f, quote(settings)) for f in due}
        limiter = steps.HostLimiter(
            settings.fetch.per_host_concurrency, settings.fetch.page_concurrency
        )
        progress = Progress("poll-progress", len(due))
        batches: dict[PrefectFuture, tuple[dict, FetchResult, int]] = {}
        claimed: set[str] = set()  # articles a feed read earlier in this poll will fetch
        for order, feed in enumerate(due):
            parsed = _fetch_and_parse(
                db,
                pool,
                feed,
                fetches[feed["url"]],
                settings,
                started,
                reports[feed["url"]],
                claimed,
                logger,
            )
            progress.feed_read(len(parsed[1]) if parsed else 0)
            if parsed is not None:
                result, new, seen = parsed
                future = fetch_articles_task.submit(
                    http,
                    pool,
                    quote(new),
                    feed["url"],
                    feed["name"],
                    quote(settings),
                    started,
                    limiter,
                    progress.advance,
                    order,
                )
                batches[future] = (feed, result, seen)
        stories = steps.load_stories(db, started) if batches else None
        for future in as_completed(list(batches)):
            feed, result, seen = batches[future]
            _store_batch(
                db,
                feed,
                result,
                future,
                seen,
                classifier,
                stories,
                settings,
                started,
                reports[feed["url"]],
                logger,
            )
        progress.finish()
        backlog = classifier.backlog()
    return _finish_poll(db, started, list(reports.values()), classifier.problem, backlog)


def _store_batch(
    db: Database,
    feed: dict,
    result: FetchResult,
    future: PrefectFuture,
    seen: int,
    classifier: steps.BatchClassifier,
    stories: steps.StoredStories,
    settings: Settings,
    now: datetime,
    report: steps.FeedReport,
    logger: LoggerLike,
) -> None:
    """Classify and store one feed's articles once its pages are in."""
    try:
        articles = future.result()
    except Exception as error:  # a bug in one feed's batch must not cost the others theirs
        logger.exception("fetching the articles of %s failed", feed["url"])
        _fail(
            db,
            feed,
            FetchError("error", f"unexpected {type(error).__name__}: {error}"),
            settings,
            now,
            report,
            logger,
        )
        return
    rows = classifier.rows(articles, feed["name"])
    inserted = steps.store_feed_poll(db, feed, result, articles, rows, settings, now, seen, stories)
    relevant = {row["article_id"] for row in rows if row["relevant"]}
    report.stored = len(inserted)
    report.relevant_ids = [article for article in inserted if article in relevant]
    report.fallbacks = sum(1 for a in articles if a["extraction_status"] != "ok")
    report.moved_to = result.moved_permanently_to or ""
    report.outcome = "new" if inserted else "no_new"


def _fetch_and_parse(
    db: Database,
    pool: WorkerPool,
    feed: dict,
    future: PrefectFuture,
    settings: Settings,
    now: datetime,
    report: steps.FeedReport,
    claimed: set[str],
    logger: LoggerLike,
) -> tuple[FetchResult, list[Entry], int] | None:
    """(result, new entries, entries seen) for a feed with new entries, else None (report filled)."""
    try:
        result = future.result()
    except (FetchError, FeedParseError) as error:
        _fail(db, feed, error, settings, now, report, logger)
        return None
    if result.not_modified or (
        result.content and steps.body_hash(result.content) == feed.get("body_hash")
    ):
        report.outcome = "not_modified" if result.not_modified else "unchanged"
        steps.store_feed_poll(db, feed, result, [], [], settings, now, 0)
        return None
    try:
        parsed = steps.parse_fetched(pool, result, settings, now)
    except FeedParseError as error:
        _fail(db, feed, error, settings, now, report, logger)
        return None
    new = steps.select_new(db, parsed.entries, claimed)
    report.entries, report.new = len(parsed.entries), len(new)
    report.warning = parsed.warning or ""
    report.skipped = parsed.skipped
    if parsed.warning:
        logger.warning("%s: %s", feed["url"], parsed.warning)
    if not new:
        report.outcome = "no_new"
        steps.store_feed_poll(db, feed, result, [], [], settings, now, len(parsed.entries))
        return None
    return result, new, len(parsed.entries)


def _fail(
    db: Database,
    feed: dict,
    error: FetchError | FeedParseError,
    settings: Settings,
    now: datetime,
    report: steps.FeedReport,
    logger: LoggerLike,
) -> None:
    row = steps.record_feed_failure(db, feed, error, settings, now)
    report.outcome, report.error_kind, report.error = "failed", error.kind, error.message
    logger.warning(
        "feed %s failed (%s): %s; next try %s",
        feed["url"],
        error.kind,
        error.message,
        row.get("next_poll_at"),
    )


def _finish_poll(
    db: Database,
    started: datetime,
    reports: list[steps.FeedReport],
    model_problem: str | None,
    backlog: int,
) -> dict:
    finished = datetime.now(UTC)
    markdown = poll_summary_markdown(db, reports, started, finished, model_problem, backlog)
    create_markdown_artifact(
        markdown, key="poll-summary", description="feeds polled, failures and new matches"
    )
    totals = {
        "feeds": len(reports),
        "failed": sum(r.outcome == "failed" for r in reports),
        "stored": sum(r.stored for r in reports),
        "relevant": sum(len(r.relevant_ids) for r in reports),
        "fallbacks": sum(r.fallbacks for r in reports),
        "backlog_classified": backlog,
        "model_problem": model_problem,
        "per_feed": {
            r.url: {
                "outcome": r.outcome,
                "stored": r.stored,
                "relevant": len(r.relevant_ids),
                "error": r.error,
            }
            for r in reports
        },
    }
    status = "completed" if not model_problem else "degraded"
    record_run(db, "poll", iso(started), iso(finished), status, totals)
    return totals


@flow(name="send-digest", log_prints=True)
def send_digest(config: str | None = None, dry_run: bool = False) -> dict:
    """Email the relevant articles not sent yet (or write them to the outbox); mark them only on success."""
    logger = get_run_logger()
    now = datetime.now(UTC).astimezone()
    settings = load_settings(config)
    db = open_database(settings.storage.path)
    prepared = prepare_digest(db, settings, now, logger.warning)
    if prepared is None:
        create_markdown_artifact(
            "# Digest\n\nNothing new since the last digest.",
            key="digest-preview",
            description="what the digest would contain",
        )
        logger.info("nothing new to send")
        return {"stories": 0, "sent": False}
    outcome: dict[str, Any] = {
        "stories": prepared.story_count,
        "articles": len(prepared.item_ids),
        "subject": prepared.subject,
        "sent": False,
        "dry_run": dry_run,
    }
    if not dry_run:
        try:
            digest_id, delivery = deliver_digest(db, settings, prepared, now)
        except DeliveryError as error:
            outcome["error"] = str(error)
            create_markdown_artifact(
                digest_preview_markdown(prepared, outcome), key="digest-preview"
            )
            record_run(db, "digest", iso(now), iso(datetime.now(UTC)), "failed", outcome)
            raise
        outcome.update(
            sent=True,
            digest_id=digest_id,
            transport=delivery.transport,
            path=delivery.path,
            message_id=delivery.message_id,
            refused=delivery.refused,
        )
        if delivery.refused:
            logger.warning("some recipients were refused: %s", delivery.refused)
        logger.info(
            "digest %s sent via %s%s",
            digest_id,
            delivery.transport,
            f" to {delivery.path}" if delivery.path else "",
        )
    create_markdown_artifact(
        digest_preview_markdown(prepared, outcome),
        key="digest-preview",
        description="the digest as sent",
    )
    record_run(db, "digest", iso(now), iso(datetime.now(UTC)), "completed", outcome)
    return outcome


@flow(name="retrain-classifier", log_prints=True)
def retrain_classifier(config: str | None = None, force: bool = False) -> dict:
    """Fit a new model on the starter corpus plus analysts' labels; promote it only if not worse."""
    logger = get_run_logger()
    started = datetime.now(UTC)
    settings = load_settings(config)
    db = open_database(settings.storage.path)
    outcome = retrain(db, settings, started, force=force, progress=logger.info)
    create_markdown_artifact(
        outcome.markdown, key="model-report", description="held-out evaluation"
    )
    logger.info(
        "model %s %s: %s",
        outcome.version,
        "promoted" if outcome.promoted else "kept aside",
        outcome.reason,
    )
    summary = {
        "version": outcome.version,
        "path": str(outcome.path),
        "promoted": outcome.promoted,
        "reason": outcome.reason,
        "labels": outcome.label_count,
    }
    record_run(db, "retrain", iso(started), iso(datetime.now(UTC)), "completed", summary)
    return summary


@flow(name="poll-and-digest")
def poll_and_digest(config: str | None = None, force: bool = False) -> dict:
    return {"poll": poll_feeds(config, force=force), "digest": send_digest(config)}


def scheduled_deployments(config: str | None) -> list[Any]:
    """The deployments `serve` runs: the poll on its interval, the digest on its cron, retraining
    on demand; runs of one deployment never overlap."""
    settings = load_settings(config)
    parameters = {"config": config}
    schedule = settings.schedule
    return [
        poll_feeds.to_deployment(
            name="every-poll-interval",
            parameters=parameters,
            concurrency_limit=1,
            schedule=Interval(
                timedelta(minutes=schedule.poll_every_minutes), timezone=schedule.timezone
            ),
        ),
        send_digest.to_deployment(
            name="daily",
            parameters=parameters,
            concurrency_limit=1,
            schedule=Cron(schedule.digest_cron, timezone=schedule.timezone),
        ),
        retrain_classifier.to_deployment(
            name="on-demand", parameters=parameters, concurrency_limit=1
        ),
    ]


def serve_schedules(config: str | None) -> None:
    """Run the schedules from the config until interrupted."""
    serve(*scheduled_deployments(config))
