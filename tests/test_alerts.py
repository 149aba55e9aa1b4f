"""The digest: grouping, escaping, MIME structure, and delivery over a real SMTP server."""

import email
from datetime import UTC, datetime
from email import policy

import pytest

from alerts.render import render_digest
from alerts.selection import build_groups, safe_link
from alerts.send import DeliveryError, SmtpConfig, build_message, send_smtp, write_outbox

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
HOSTILE = 'Rabat & Paris <script>alert("x")</script>\r\nBcc: victim@example.org'


def item(n: int, **extra) -> dict:
    base = {
        "id": f"a{n}",
        "url": f"https://o.example/{n}",
        "title": f"Story {n}",
        "published": f"2026-11-2{n}T08:00:00",
        "fetched_at": "2026-11-22T06:00:00",
        "feed_name": "Outlet",
        "text": "Body text " * 40,
        "summary": "",
        "lang": "en",
        "partners": ["US"],
        "topics": ["exercise"],
        "evidence": {},
        "cluster_id": f"a{n}",
    }
    return {**base, **extra}


NAMES = {"US": "United States", "FR": "France"}


def test_groups_by_partner_and_collapses_story_clusters():
    items = [
        item(1),
        item(2, partners=["FR"], topics=["agreement", "visit"]),
        item(3, cluster_id="a1", feed_name="Second outlet", url="https://second.example/x"),
    ]
    groups = build_groups(items, NAMES)
    assert [g.label for g in groups] == ["France", "United States"] or [
        g.label for g in groups
    ] == ["United States", "France"]
    us = next(g for g in groups if g.partner == "US")
    assert len(us.items) == 1
    assert us.items[0].outlet == "Outlet"
    assert us.items[0].also_reported_by == [("Second outlet", "https://second.example/x")]


def test_hostile_title_is_escaped_in_html_and_cannot_break_headers():
    groups = build_groups([item(1, title=HOSTILE, url="javascript:alert(1)")], NAMES)
    subject, text, html = render_digest(groups, generated_at=NOW)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html
    assert HOSTILE.split("\r\n")[0] in text
    message = build_message(
        subject, text, html, "atlaswatch@localhost", ["analyst@example.org"], NOW
    )
    # A title never reaches a header, and even the subject is stripped of line breaks.
    hostile_subject = build_message(HOSTILE, text, html, "a@b.example", ["c@d.example"], NOW)
    parsed = email.message_from_bytes(hostile_subject.as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None and "\n" not in parsed["Subject"]
    assert "1 new story" in message["Subject"]


def test_message_is_multipart_alternative_with_text_then_html():
    groups = build_groups([item(1)], NAMES)
    subject, text, html = render_digest(groups, generated_at=NOW)
    message = build_message(
        subject, text, html, "atlaswatch@localhost", ["a@example.org", "b@example.org"], NOW
    )
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["Message-ID"] and parsed["Date"]
    assert "Story 1" in parsed.get_body(("plain",)).get_content()


def test_evidence_sentence_is_shown_under_the_item():
    groups = build_groups(
        [
            item(
                1,
                evidence={
                    "relevant": {
                        "sentence": "Morocco and the US opened African Lion.",
                        "features": ["african lion"],
                    }
                },
            )
        ],
        NAMES,
    )
    _, text, html = render_digest(groups, generated_at=NOW)
    assert (
        "Morocco and the US opened African Lion." in text
        and "Morocco and the US opened African Lion." in html
    )


def test_feeds_needing_attention_are_listed():
    groups = build_groups([item(1)], NAMES)
    _, text, html = render_digest(
        groups,
        generated_at=NOW,
        attention=[
            {"name": "Dead <feed>", "url": "https://dead.example/rss", "problem": "410 Gone"}
        ],
    )
    assert "Dead <feed>" in text and "Dead &lt;feed&gt;" in html and "410 Gone" in html


def test_only_web_links():
    assert safe_link("https://x.example/") == "https://x.example/"
    assert safe_link("javascript:alert(1)") is None and safe_link("data:text/html,x") is None


def _message():
    groups = build_groups([item(1)], NAMES)
    subject, text, html = render_digest(groups, generated_at=NOW)
    return build_message(
        subject, text, html, "atlaswatch@localhost", ["analyst@example.org"], NOW
    ), html


def test_smtp_delivery_to_a_real_server(smtp_server):
    message, _ = _message()
    delivery = send_smtp(
        message, SmtpConfig(smtp_server.host, smtp_server.port, starttls=False, timeout=10)
    )
    assert delivery.transport == "smtp" and not delivery.refused
    assert len(smtp_server.messages) == 1 and smtp_server.messages[0].rcpt_tos == [
        "analyst@example.org"
    ]


def test_smtp_partly_refused_recipients_are_reported(smtp_server):
    message, _ = _message()
    del message["To"]
    message["To"] = "analyst@example.org, ghost@example.org"
    smtp_server.refuse_recipients = {"ghost@example.org"}
    delivery = send_smtp(
        message, SmtpConfig(smtp_server.host, smtp_server.port, starttls=False, timeout=10)
    )
    assert (
        list(delivery.refused) == ["ghost@example.org"]
        and "550" in delivery.refused["ghost@example.org"]
    )


@pytest.mark.parametrize(
    ("reply", "retry"), [("451 4.3.0 try again later", True), ("554 5.7.1 rejected", False)]
)
def test_smtp_refusal_raises_with_retry_hint(smtp_server, reply, retry):
    message, _ = _message()
    smtp_server.refuse_with = reply
    with pytest.raises(DeliveryError) as caught:
        send_smtp(
            message, SmtpConfig(smtp_server.host, smtp_server.port, starttls=False, timeout=10)
        )
    assert caught.value.retry is retry


def test_starttls_required_but_not_offered_fails_clearly(smtp_server):
    message, _ = _message()
    with pytest.raises(DeliveryError, match="STARTTLS"):
        send_smtp(
            message, SmtpConfig(smtp_server.host, smtp_server.port, starttls=True, timeout=10)
        )
    assert smtp_server.messages == []


def test_unreachable_smtp_server_is_retryable():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message, _ = _message()
    with pytest.raises(DeliveryError) as caught:
        send_smtp(message, SmtpConfig("127.0.0.1", port, starttls=False, timeout=5))
    assert caught.value.retry


def test_outbox_writes_eml_and_html(tmp_path):
    message, html = _message()
    delivery = write_outbox(message, html, tmp_path / "outbox")
    files = sorted(p.suffix for p in (tmp_path / "outbox").iterdir())
    assert files == [".eml", ".html"] and delivery.path.endswith(".eml")
    parsed = email.message_from_bytes(
        (tmp_path / "outbox" / delivery.path.rsplit("/", 1)[1]).read_bytes(), policy=policy.default
    )
    assert parsed.get_content_type() == "multipart/alternative"


def test_snippet_does_not_repeat_the_headline_and_stops_at_a_word():
    from alerts.selection import snippet

    text = "Story 1\nAGADIR — Planners met on Tuesday. " + "More words follow here. " * 30
    short = snippet(text, 80, title="Story 1")
    assert short.startswith("AGADIR") and short.endswith("…") and len(short) <= 81
    assert snippet("Short text.", 80) == "Short text."
