"""End to end through Prefect: poll real local feeds, extract, classify, store, digest over real SMTP."""

import email
import json
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from prefect import flow
from prefect.artifacts import Artifact

from alerts.send import DeliveryError
from flows.demo import build_site, load_sample_articles
from flows.localserver import Resource
from flows.pipeline import Progress, poll_feeds, scheduled_deployments, send_digest
from storage import open_database
from storage.articles import pending_digest_items
from storage.feeds import list_feeds
from tests.conftest import write_config

pytestmark = pytest.mark.usefixtures("prefect_harness")

EMPTY_PAGE = b"<html><body><nav>Home</nav></body></html>"


@pytest.fixture
def world(site, tmp_path):
    """The sample outlets plus a dead feed, a not-a-feed and an article whose page has no text."""
    articles = load_sample_articles()
    routes, feeds = build_site(articles, site.url)
    site.routes.update(routes)
    site.routes["/not-a-feed.xml"] = Resource(
        b"<!DOCTYPE html><html><body>Hello</body></html>", "text/html"
    )
    site.routes["/empty/page.html"] = Resource(EMPTY_PAGE)
    site.routes["/feeds/summary-only.xml"] = Resource(
        f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Summary only</title>
        <item><title>Brief: Morocco and Senegal hold naval talks</title><link>{site.url}/empty/page.html</link>
        <description>The navies of Morocco and Senegal discussed joint patrols off Dakhla.</description></item>
        </channel></rss>""".encode(),
        "application/rss+xml",
    )
    feeds += [("/not-a-feed.xml", "Not a feed"), ("/feeds/summary-only.xml", "Summary only")]
    config = write_config(tmp_path, site.url, feeds)
    return {
        "articles": articles,
        "config": str(config),
        "db": tmp_path / "atlaswatch.db",
        "site": site,
    }


def stored(db_path):
    db = open_database(db_path)
    return {row["url"]: row for row in db.query("SELECT * FROM articles")}, db


def test_poll_then_digest_end_to_end(world, smtp_server, monkeypatch):
    summary = poll_feeds(world["config"])
    articles, db = stored(world["db"])
    sample_urls = {f"{world['site'].url}/{a['domain']}/{a['slug']}.html" for a in world["articles"]}
    # Every sample article stored once, though the relay feed repeats one with tracking parameters:
    # its page was fetched once, for the outlet's own feed (read before the relay's).
    assert sample_urls <= set(articles) and len(articles) == len(sample_urls) + 1
    relayed = world["articles"][0]
    assert world["site"].hits[f"/{relayed['domain']}/{relayed['slug']}.html"] == 1
    own_feed = articles[f"{world['site'].url}/{relayed['domain']}/{relayed['slug']}.html"][
        "feed_url"
    ]
    assert not own_feed.endswith("/feeds/wire-relay.xml")
    assert summary["stored"] == len(articles)
    # Reader comments are not article text.
    for article in world["articles"]:
        row = articles[f"{world['site'].url}/{article['domain']}/{article['slug']}.html"]
        assert row["extraction_status"] == "ok"
        for comment in article["comments"]:
            assert comment["text"][:40] not in row["text"]
        assert article["paragraphs"][0][:40] in row["text"]
    # The page with no article text keeps the feed's summary and says so.
    empty = articles[f"{world['site'].url}/empty/page.html"]
    assert (
        empty["extraction_status"] == "fallback"
        and "Dakhla" in empty["text"]
        and "summary" in empty["extraction_note"]
    )
    # Broken feeds are recorded with their kind, the rest of the run went on.
    health = {row["name"]: row for row in list_feeds(db)}
    assert health["Closed Outlet (gone)"]["last_error_kind"] == "http"
    assert health["Not a feed"]["last_error_kind"] == "not_feed"
    assert summary["failed"] == 2
    # Everything stored was classified, and the clear cases are right.
    tags = {row["article_id"]: row for row in db.query("SELECT * FROM classifications")}
    assert len(tags) == len(articles)
    by_slug = {
        a["slug"]: tags[articles[f"{world['site'].url}/{a['domain']}/{a['slug']}.html"]["id"]]
        for a in world["articles"]
    }
    assert by_slug["african-lion-2027-planning-conference-agadir"]["relevant"] == 1
    assert "US" in json.loads(by_slug["african-lion-2027-planning-conference-agadir"]["partners"])
    assert by_slug["casablanca-derby-goalless-draw"]["relevant"] == 0
    # The poll summary is in the Prefect UI.
    artifact = Artifact.get("poll-summary")
    assert (
        artifact is not None and "Closed Outlet" in artifact.data and "New matches" in artifact.data
    )
    assert float(Artifact.get("poll-progress").data) == 100.0

    # A second poll: every feed answers 304, no page is fetched again.
    page_hits = {path: n for path, n in world["site"].hits.items() if path.endswith(".html")}
    again = poll_feeds(world["config"], force=True)
    assert again["stored"] == 0
    assert {
        path: n for path, n in world["site"].hits.items() if path.endswith(".html")
    } == page_hits
    outcomes = {
        info["outcome"]
        for url, info in again["per_feed"].items()
        if "closed" not in url and "not-a-feed" not in url
    }
    assert outcomes == {"not_modified"}

    # The SMTP server refuses: nothing is marked sent.
    pending = {item["id"] for item in pending_digest_items(db)}
    assert pending
    assert not any(item["evidence"] for item in pending_digest_items(db))  # left to the digest
    monkeypatch.setenv("ATLASWATCH_EMAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("ATLASWATCH_EMAIL_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("ATLASWATCH_EMAIL_STARTTLS", "false")
    smtp_server.refuse_with = "451 4.3.0 mailbox busy, try later"
    with pytest.raises(DeliveryError):
        send_digest(world["config"])
    assert {item["id"] for item in pending_digest_items(db)} == pending

    # It accepts: one multipart/alternative digest, everything marked, nothing left pending.
    smtp_server.refuse_with = None
    outcome = send_digest(world["config"])
    assert outcome["sent"] and outcome["transport"] == "smtp"
    assert len(smtp_server.messages) == 1
    message = email.message_from_bytes(smtp_server.messages[0].content, policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",)).get_content()
    # A story, and the footer's failing feed.
    assert "African Lion" in html and "Closed Outlet" in html
    assert "&lt;2027-2029&gt;" in html or "2027-2029" not in html
    assert message.get_body(("plain",)).get_content().count('Why: "') == len(pending)
    explained = [
        json.loads(row[0])
        for row in db.execute("SELECT evidence FROM classifications WHERE relevant = 1").fetchall()
    ]
    assert len(explained) == len(pending) and all(
        evidence["relevant"]["sentence"] for evidence in explained
    )
    assert pending_digest_items(db) == []
    assert send_digest(world["config"])["stories"] == 0
    assert "Nothing new" in Artifact.get("digest-preview").data


def test_digest_goes_to_the_outbox_without_smtp(world):
    poll_feeds(world["config"])
    outcome = send_digest(world["config"])
    assert outcome["transport"] == "outbox" and outcome["path"].endswith(".eml")
    eml = Path(outcome["path"])
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert eml.with_suffix(".html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_digest_whose_model_cannot_load_goes_out_without_supporting_sentences(
    world, tmp_path, monkeypatch
):
    poll_feeds(world["config"])
    bad = tmp_path / "evil.skops"
    bad.write_bytes(b"\x80\x04\x95pickle-bytes")
    monkeypatch.setenv("ATLASWATCH_CLASSIFIER_MODEL", str(bad))
    outcome = send_digest(world["config"])
    assert outcome["sent"] and outcome["stories"] > 0
    text = email.message_from_bytes(Path(outcome["path"]).read_bytes(), policy=policy.default)
    assert "Why:" not in text.get_body(("plain",)).get_content()


def test_dry_run_marks_nothing(world):
    poll_feeds(world["config"])
    _, db = stored(world["db"])
    before = len(pending_digest_items(db))
    outcome = send_digest(world["config"], dry_run=True)
    assert outcome["stories"] > 0 and not outcome["sent"]
    assert len(pending_digest_items(db)) == before


def test_refused_model_file_stores_articles_unclassified_then_a_good_run_classifies_them(
    world, tmp_path, monkeypatch
):
    bad = tmp_path / "evil.skops"
    bad.write_bytes(b"\x80\x04\x95pickle-bytes")
    monkeypatch.setenv("ATLASWATCH_CLASSIFIER_MODEL", str(bad))
    summary = poll_feeds(world["config"])
    assert summary["model_problem"] and summary["stored"] > 0
    _, db = stored(world["db"])
    assert db.execute("SELECT COUNT(*) FROM classifications").fetchone()[0] == 0
    assert "Classifier unavailable" in Artifact.get("poll-summary").data
    monkeypatch.delenv("ATLASWATCH_CLASSIFIER_MODEL")
    again = poll_feeds(world["config"], force=True)
    assert again["backlog_classified"] == summary["stored"]
    assert db.execute("SELECT COUNT(*) FROM classifications").fetchone()[0] == summary["stored"]


def test_serve_schedules_the_poll_the_digest_and_retraining_from_the_config(tmp_path):
    config = write_config(
        tmp_path,
        "http://127.0.0.1:9",
        [("/feed.xml", "Feed")],
        extra=(
            '[schedule]\npoll_every_minutes = 45\ndigest_cron = "30 6 * * 1-5"\ntimezone = "Europe/Madrid"'
        ),
    )
    deployments = {d.flow_name: d for d in scheduled_deployments(str(config))}
    assert set(deployments) == {"poll-feeds", "send-digest", "retrain-classifier"}
    assert all(
        d.parameters == {"config": str(config)} and d.concurrency_limit == 1
        for d in deployments.values()
    )
    (poll,) = deployments["poll-feeds"].schedules
    assert (
        poll.schedule.interval == timedelta(minutes=45)
        and poll.schedule.timezone == "Europe/Madrid"
    )
    (digest,) = deployments["send-digest"].schedules
    assert digest.schedule.cron == "30 6 * * 1-5" and digest.schedule.timezone == "Europe/Madrid"
    assert not deployments["retrain-classifier"].schedules


def test_flows_called_here_run_without_a_heartbeat_unless_the_user_sets_one():
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )

    from flows.prefect_env import direct_flow_runs

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 90}):
        with direct_flow_runs(environ={}):
            assert get_current_settings().flows.heartbeat_frequency is None
        assert get_current_settings().flows.heartbeat_frequency == 90
        with direct_flow_runs(environ={"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "90"}):
            assert get_current_settings().flows.heartbeat_frequency == 90


def test_the_progress_bar_never_moves_back_when_an_older_update_comes_last():
    @flow
    def racing_updates() -> None:
        progress = Progress("progress-order-test", feeds=1)
        progress._send(100.0)  # the last page's update went out first...
        progress._send(84.0)  # ...and an earlier page's, delayed, must not overwrite it

    racing_updates()
    assert float(Artifact.get("progress-order-test").data) == 100.0
