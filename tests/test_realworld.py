"""Real feeds and real article pages from ../shared/realworld, served from 127.0.0.1 and taken
through the poll's own steps: fetch, parse in a worker, fetch pages and extract them in a worker.

The extraction figures come from `extraction_scores`, which the lead can quote:

    .venv/bin/python -m tests.test_realworld   # prints the figures and the feed table as JSON
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from flows.canonical import canonical_url
from flows.fetch import FetchError, make_client
from flows.localserver import LocalServer, Resource
from flows.parse import Entry, FeedParseError, ParsedFeed
from flows.poll import fetch_articles, fetch_feed, parse_fetched, policy_from
from flows.settings import Settings, with_overrides
from flows.workers import WorkerPool
from tests.conftest import SHARED

pytestmark = pytest.mark.realworld

REALWORLD = SHARED / "realworld"
MEDIAN_F1_FLOOR = 0.85
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
WORD = re.compile(r"\w+")
# UTF-8 read as Latin-1 / windows-1252.
MOJIBAKE = re.compile("[ÃÂ][\u0080-\u00bf]|Ð[\u0080-\u00bf]")
# Entries the feed really has but that carry nothing to keep: an empty <item> (09) and the empty
# <item/> nested inside each real item (19); each is skipped with "the entry has no link".
KEPT_BELOW_FEEDPARSER = {
    "09_le_cercle_psy_rss2_undeclared_latin1.xml": 1,
    "19_pcmag_dvorak_rss2_illegally_nested_items.xml": 10,
}
TRUNCATED = "18_reuters_most_read_rss2_truncated.xml"


def _manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "manifest.json").read_text("utf-8"))


def _feed_names() -> list[str]:
    folder = REALWORLD / "feeds"
    return (
        sorted(p.name for p in folder.glob("*.xml"))
        if folder.is_dir()
        else ["(shared/realworld missing)"]
    )


FEEDS = _feed_names()


def loopback_settings(**fetch: Any) -> Settings:
    """Defaults, except that the test server on 127.0.0.1 is let through."""
    return with_overrides(Settings(), fetch={"allowed_networks": ("127.0.0.1/32",), **fetch})


def feed_content_type(record: dict[str, Any]) -> str:
    """What a real server sends: UTF-8 feeds labelled so; the others as XML with no charset, so that
    the XML declaration (or its absence) decides, as in the wild."""
    kind = "application/atom+xml" if "atom" in record["format"].lower() else "application/rss+xml"
    if record["decodes_as_utf8"] and (record["declared_encoding"] or "utf-8").lower() in (
        "utf-8",
        "none",
    ):
        return f"{kind}; charset=utf-8"
    return "application/xml"


def page_content_type(record: dict[str, Any]) -> str:
    """Pages with a <meta> charset are served without one in the header (the page decides); the
    pages that declare none are UTF-8 and relied on the header, which was not stored."""
    return "text/html" if record.get("meta_charset") else "text/html; charset=utf-8"


def clean_line(text: str) -> bool:
    """One line of text: no control or line-separator characters, no runs of whitespace."""
    return all(
        unicodedata.category(c) not in ("Cc", "Zl", "Zp") for c in text
    ) and text == " ".join(text.split())


def is_web_link(link: str) -> bool:
    parts = urlsplit(link)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# ---------------------------------------------------------------------------------------------
# Token F1, the measure of the article-extraction benchmark
# ---------------------------------------------------------------------------------------------


def tokens(text: str) -> Counter[str]:
    return Counter(word.lower() for word in WORD.findall(text))


def token_scores(extracted: str, truth: str) -> tuple[float, float, float]:
    """(precision, recall, F1) over token multisets: \\w+ tokens, lower-cased."""
    got, want = tokens(extracted), tokens(truth)
    common = sum((got & want).values())
    if not common:
        return 0.0, 0.0, 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return precision, recall, 2 * precision * recall / (precision + recall)


def truth_for(page: Path) -> dict[str, Any] | None:
    """{"text": ...} for full truth (benchmark body, fundus sections, newspaper4k text), or
    {"must_contain": [...], "must_not_contain": [...]} for trafilatura's partial truth, or None."""
    stem = page.name.removesuffix(".html")
    as_text, as_json = page.with_name(f"{stem}.truth.txt"), page.with_name(f"{stem}.truth.json")
    if as_text.exists():
        return {"text": as_text.read_text("utf-8")}
    if not as_json.exists():
        return None
    data = json.loads(as_json.read_text("utf-8"))
    if "articleBody" in data:
        return {"text": data["articleBody"]}
    if "body" in data:
        parts = list(data["body"].get("summary", []))
        for section in data["body"].get("sections", []):
            parts += section.get("headline", []) + section.get("paragraphs", [])
        return {"text": "\n".join(parts)}
    if "must_contain" in data:
        return {
            "must_contain": data["must_contain"],
            "must_not_contain": data.get("must_not_contain", []),
        }
    return None


# ---------------------------------------------------------------------------------------------
# Serving the folder and running the poll steps over it
# ---------------------------------------------------------------------------------------------


@dataclass
class Realworld:
    server: LocalServer
    feeds: dict[str, str]  # file name -> URL
    misdeclared: dict[str, str]  # non-UTF-8 feeds served with a wrong "charset=utf-8"
    pages: dict[str, str]  # path under pages/ -> URL
    manifest: dict[str, Any]


@contextmanager
def serve_realworld(root: Path) -> Iterator[Realworld]:
    manifest = _manifest(root)
    with LocalServer() as server:
        feeds, misdeclared, pages = {}, {}, {}
        for record in manifest["feeds"]:
            path = root / record["file"]
            route = f"/feeds/{path.name}"
            server.routes[route] = Resource(path.read_bytes(), feed_content_type(record))
            feeds[path.name] = server.url + route
            if not record["decodes_as_utf8"]:
                wrong = f"/misdeclared/{path.name}"
                server.routes[wrong] = Resource(
                    path.read_bytes(), "application/rss+xml; charset=utf-8"
                )
                misdeclared[path.name] = server.url + wrong
        for record in manifest["html"]:
            relative = record["file"].removeprefix("html/")
            path = root / "pages" / relative
            route = "/pages/" + quote(relative)
            server.routes[route] = Resource(path.read_bytes(), page_content_type(record))
            pages[relative] = server.url + route
        yield Realworld(server, feeds, misdeclared, pages, manifest)


def fetch_and_parse(
    site: Realworld, urls: dict[str, str], settings: Settings, pool: WorkerPool
) -> dict[str, ParsedFeed | FeedParseError | FetchError]:
    """Each feed through the poll's own steps; the outcome, or the recorded error."""
    outcomes: dict[str, ParsedFeed | FeedParseError | FetchError] = {}
    with make_client(
        "atlaswatch-test", settings.fetch.connect_timeout, policy_from(settings)
    ) as http:
        for name, url in urls.items():
            try:
                result = fetch_feed(http, {"url": url}, settings)
                outcomes[name] = parse_fetched(pool, result, settings, NOW)
            except (FetchError, FeedParseError) as error:
                outcomes[name] = error
    return outcomes


def feed_table(outcomes: dict[str, Any], manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per feed: what feedparser found upstream against what the poll kept."""
    upstream = manifest["baseline_check_not_ground_truth"]["results"]["feeds"]
    rows = []
    for name, outcome in outcomes.items():
        row: dict[str, Any] = {
            "feed": name,
            "feedparser_items": upstream.get(name, {}).get("entries"),
        }
        if isinstance(outcome, ParsedFeed):
            row |= {
                "outcome": "parsed",
                "version": outcome.version,
                "entries_in_feed": outcome.total_entries,
                "kept": len(outcome.entries),
                "skipped": len(outcome.skipped),
                "warning": (outcome.warning or "")[:80],
            }
        else:
            row |= {"outcome": f"error:{outcome.kind}", "error": outcome.message[:120]}
        rows.append(row)
    return rows


def extraction_scores(root: Path = REALWORLD, out: Path | None = None) -> dict[str, Any]:
    """Serve every page in realworld/pages, fetch and extract each as a poll does (fetch, then
    trafilatura in a worker process, then the fallback rule), and score the text against the truth.

    Full truth: token F1 (\\w+ tokens, lower-cased, multisets). Partial truth (trafilatura's own
    evaluation pages): how many must_contain snippets were found and must_not_contain avoided.
    """
    started = time.monotonic()
    settings = loopback_settings()
    with (
        serve_realworld(root) as site,
        WorkerPool(2, timeout=60) as pool,
        make_client(
            "atlaswatch-test", settings.fetch.connect_timeout, policy_from(settings)
        ) as http,
    ):
        names = list(site.pages)
        entries = [_entry_for(site.pages[name]) for name in names]
        articles = fetch_articles(http, pool, entries, site.server.url + "/feed", settings, NOW)
    rows = []
    for name, article in zip(names, articles, strict=True):
        truth = truth_for(root / "pages" / name)
        text = article["text"]
        row: dict[str, Any] = {
            "page": name,
            "status": article["extraction_status"],
            "chars": len(text),
            "note": article["extraction_note"],
        }
        if truth and "text" in truth:
            precision, recall, f1 = token_scores(text, truth["text"])
            row |= {
                "truth": "full",
                "precision": round(precision, 4),
                "recall": round(recall, 4),
                "f1": round(f1, 4),
            }
        elif truth:
            row |= {
                "truth": "partial",
                "must_contain": [
                    sum(s in text for s in truth["must_contain"]),
                    len(truth["must_contain"]),
                ],
                "must_not_contain": [
                    sum(s not in text for s in truth["must_not_contain"]),
                    len(truth["must_not_contain"]),
                ],
            }
        else:
            row["truth"] = "none"
        rows.append(row)
    scored = sorted((row for row in rows if row["truth"] == "full"), key=lambda row: row["f1"])
    f1s = [row["f1"] for row in scored]
    partial = [row for row in rows if row["truth"] == "partial"]
    summary = {
        "pages": len(rows),
        "pages_with_full_truth": len(scored),
        "median_f1": round(statistics.median(f1s), 4) if f1s else None,
        "mean_f1": round(statistics.mean(f1s), 4) if f1s else None,
        "min_f1": f1s[0] if f1s else None,
        "worst_5": [(row["page"], row["f1"]) for row in scored[:5]],
        "partial_pages": len(partial),
        "must_contain_found": [
            sum(r["must_contain"][0] for r in partial),
            sum(r["must_contain"][1] for r in partial),
        ],
        "must_not_contain_avoided": [
            sum(r["must_not_contain"][0] for r in partial),
            sum(r["must_not_contain"][1] for r in partial),
        ],
        "statuses": dict(Counter(row["status"] for row in rows)),
        "seconds": round(time.monotonic() - started, 2),
        "rows": rows,
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=1, ensure_ascii=False), "utf-8")
    return summary


def _entry_for(url: str) -> Entry:
    return Entry(
        link=url,
        canonical=canonical_url(url),
        title="",
        summary="",
        guid=url,
        author="",
        published=None,
        dedupe_key=url,
    )


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def realworld(shared_dir: Path) -> Path:
    root = shared_dir / "realworld"
    if not (root / "manifest.json").is_file():
        pytest.skip(f"{root} has no manifest.json: the real-world fixtures are not there")
    return root


@pytest.fixture(scope="module")
def feed_run(realworld: Path) -> dict[str, Any]:
    settings = loopback_settings()
    with serve_realworld(realworld) as site, WorkerPool(2, timeout=30) as pool:
        outcomes = fetch_and_parse(site, site.feeds, settings, pool)
        misdeclared = fetch_and_parse(site, site.misdeclared, settings, pool)
        print("\nrealworld feeds:")
        for row in feed_table(outcomes, site.manifest):
            print("  " + json.dumps(row, ensure_ascii=False))
        return {
            "outcomes": outcomes,
            "misdeclared": misdeclared,
            "manifest": site.manifest,
            "urls": dict(site.feeds),
        }


@pytest.fixture(scope="module")
def scores(realworld: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("realworld") / "extraction_scores.json"
    summary = extraction_scores(realworld, out)
    print(
        f"\nrealworld extraction: median token F1 {summary['median_f1']}, mean {summary['mean_f1']}, "
        f"min {summary['min_f1']} over {summary['pages_with_full_truth']} pages; worst {summary['worst_5']}; "
        f"snippets found {summary['must_contain_found']}, boilerplate avoided "
        f"{summary['must_not_contain_avoided']}; {summary['seconds']} s; figures in {out}"
    )
    return summary


def _titles(feed_run: dict[str, Any], prefix: str) -> list[str]:
    name = next(name for name in feed_run["outcomes"] if name.startswith(prefix))
    outcome = feed_run["outcomes"][name]
    assert isinstance(outcome, ParsedFeed), outcome
    return [entry.title for entry in outcome.entries]


@pytest.mark.parametrize("name", FEEDS)
def test_every_real_feed_parses_or_fails_with_a_recorded_reason(feed_run, name):
    outcome = feed_run["outcomes"][name]
    record = next(r for r in feed_run["manifest"]["feeds"] if r["file"].endswith(name))
    baseline = feed_run["manifest"]["baseline_check_not_ground_truth"]["results"]["feeds"][name]
    upstream, upstream_bozo = baseline["entries"], baseline["bozo"]
    if name == TRUNCATED:
        # The server died after the channel header: no item at all, so a parse error, not an empty success.
        assert isinstance(outcome, FeedParseError) and outcome.kind == "parse", outcome
        assert upstream == 0
        return
    assert isinstance(outcome, ParsedFeed), f"{name} ({record['format']}) failed: {outcome}"
    assert outcome.total_entries == upstream, (
        "feedparser saw a different number of items than upstream"
    )
    assert len(outcome.entries) == upstream - KEPT_BELOW_FEEDPARSER.get(name, 0)
    # Every entry feedparser found is either kept or skipped with a stated reason.
    assert len(outcome.entries) + len(outcome.skipped) == outcome.total_entries
    assert all(reason for _, reason in outcome.skipped)
    assert outcome.title and clean_line(outcome.title)
    for entry in outcome.entries:
        assert isinstance(entry.title, str) and entry.title, entry
        assert clean_line(entry.title), repr(entry.title)
        assert not MOJIBAKE.search(entry.title), f"mis-decoded title {entry.title!r}"
        assert "\ufffd" not in entry.title, f"undecodable bytes in {entry.title!r}"
        assert is_web_link(entry.link), entry.link
        assert entry.published is None or entry.published.startswith(("19", "20"))
    # Malformed upstream (bozo in feedparser) means a warning here, and only then.
    assert (outcome.warning is not None) == upstream_bozo, outcome.warning


def test_latin1_golem_feeds_keep_their_umlauts(feed_run):
    titles = _titles(feed_run, "01_") + _titles(feed_run, "02_")
    assert "Machine Learning: Von KI erstelltes Porträt für 432.500 US.Dollar versteigert" in titles
    assert "Digitalministerium: Neue Glasfaserförderung mit Schnellkasse" in titles
    assert sum(any(c in t for c in "äöüÄÖÜß") for t in titles) >= 10


def test_windows_1251_feeds_keep_their_cyrillic(feed_run):
    assert "Руководители разведки США шутят об убийстве Сноудена" in _titles(feed_run, "12_")
    assert "В Бузулуке главные стройплощадки – детсад и Ледовый дворец" in _titles(feed_run, "13_")
    for prefix in ("12_", "13_"):
        assert all(re.search("[А-Яа-я]", t) or t.isascii() for t in _titles(feed_run, prefix))


def test_urdu_feed_keeps_its_script(feed_run):
    titles = _titles(feed_run, "05_")
    assert "امریکہ کے ساتھ خفیہ معلومات کا تبادلہ اور فوجی تعاون معطل کر دیا: وزیر دفاع" in titles
    assert all(re.search("[\u0600-\u06ff]", t) for t in titles)


def test_undeclared_latin1_feeds_are_read_as_latin1(feed_run):
    assert "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno" in _titles(
        feed_run, "11_"
    )
    assert "La criminalité liée surtout à... l'ennui ?" in _titles(feed_run, "09_")
    assert "Reações dos partidos ao veto de Marcelo" in _titles(feed_run, "10_")


def test_relative_atom_links_are_resolved_against_the_feed_url(feed_run):
    name = next(n for n in feed_run["outcomes"] if n.startswith("15_"))
    origin = "{0.scheme}://{0.netloc}/".format(urlsplit(feed_run["urls"][name]))
    links = [entry.link for entry in feed_run["outcomes"][name].entries]
    assert links and all(link.startswith(origin) for link in links)
    assert (
        origin + "livewire/hannity-announces-fox-hired-sebastian-gorka-national-security-strategist"
        in links
    )


def test_a_wrong_utf8_charset_header_does_not_garble_titles(feed_run):
    """Servers often label everything UTF-8; the Latin-1 and windows-1251 feeds still read right."""
    assert feed_run["misdeclared"]
    for name, outcome in feed_run["misdeclared"].items():
        assert isinstance(outcome, ParsedFeed), (name, outcome)
        right = feed_run["outcomes"][name]
        assert [e.title for e in outcome.entries] == [e.title for e in right.entries], name


def test_extraction_recovers_the_true_text(scores):
    assert scores["pages_with_full_truth"] >= 40
    assert scores["median_f1"] >= MEDIAN_F1_FLOOR, scores["worst_5"]
    assert scores["mean_f1"] >= 0.9
    found, wanted = scores["must_contain_found"]
    assert found >= 0.9 * wanted
    assert scores["statuses"] == {"ok": scores["pages"]}, [
        r for r in scores["rows"] if r["status"] != "ok"
    ]


def test_pages_in_legacy_charsets_are_decoded_by_their_declaration(scores):
    """windows-1250, ISO-8859-1, and a UTF-8 page with one broken sequence: every snippet survives."""
    rows = {row["page"]: row for row in scores["rows"]}
    for page in (
        "trafilatura/rp.pl.unijne-fundusze.html",
        "trafilatura/badische-zeitung.de-Wohnungssuche.html",
        "trafilatura/winfuture.de-NASA.html",
        "trafilatura/radiomaryja.pl.sprzeciw.html",
    ):
        found, wanted = rows[page]["must_contain"]
        assert found == wanted, (page, rows[page])


if __name__ == "__main__":
    target = Path(tempfile.gettempdir()) / "atlaswatch-realworld" / "extraction_scores.json"
    figures = extraction_scores(REALWORLD, target)
    with serve_realworld(REALWORLD) as served, WorkerPool(2, timeout=30) as workers:
        table = feed_table(
            fetch_and_parse(served, served.feeds, loopback_settings(), workers), served.manifest
        )
    json.dump(
        {k: v for k, v in figures.items() if k != "rows"}
        | {"feeds": table, "written_to": str(target)},
        sys.stdout,
        indent=1,
        ensure_ascii=False,
    )
    print()
