"""feedparser's own test corpus (../shared/realworld/feedparser-tests, about 2,250 small feeds full of
sanitizer, entity and encoding traps) through the parse step, in worker processes with a wall-clock
limit: every file ends as a ParsedFeed or a FeedParseError, never anything else, and in time."""

from __future__ import annotations

import time
import unicodedata
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from flows.fetch import FEED_ACCEPT, FetchError, FetchLimits, fetch, make_client
from flows.guard import AddressPolicy
from flows.localserver import Resource
from flows.parse import FeedParseError, ParsedFeed, parse_feed
from flows.workers import WorkerPool, WorkFailed

pytestmark = pytest.mark.realworld

PER_FILE_SECONDS = 10.0
BATCH = 120  # files per worker call: one call per file would spend more on the pipe than on parsing
OUTCOMES = {"parsed", "not_feed", "parse"}
LOOPBACK = AddressPolicy.from_settings(False, ("127.0.0.1/32",))


def corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "LICENSE")


def parse_files(root: str, names: list[str]) -> list[tuple[str, str, float, list[str]]]:
    """Runs in a worker: (name, outcome, seconds, problems) per file. The outcome is "parsed" or the
    FeedParseError's kind; any other exception is caught here only to name the file it came from."""
    results = []
    for name in names:
        content = (Path(root) / name).read_bytes()
        started = time.monotonic()
        problems: list[str] = []
        try:
            parsed = parse_feed(content, f"http://127.0.0.1/{name}")
            outcome = (
                "parsed" if isinstance(parsed, ParsedFeed) else f"returned {type(parsed).__name__}"
            )
            problems = entry_problems(parsed) if isinstance(parsed, ParsedFeed) else []
        except FeedParseError as error:
            outcome = error.kind
        except Exception as error:
            outcome = f"escaped {type(error).__name__}: {error}"[:300]
        results.append((name, outcome, time.monotonic() - started, problems))
    return results


def entry_problems(parsed: ParsedFeed) -> list[str]:
    problems = []
    for entry in parsed.entries:
        if urlsplit(entry.link).scheme not in ("http", "https"):
            problems.append(
                f"link with scheme {urlsplit(entry.link).scheme!r}: {entry.link[:80]!r}"
            )
        for label, text in (
            ("title", entry.title),
            ("author", entry.author),
            ("summary", entry.summary),
        ):
            if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
                problems.append(f"{label} with a control or line-break character: {text[:80]!r}")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in parsed.title):
        problems.append(f"feed title with a control character: {parsed.title[:80]!r}")
    return problems


def run_corpus(
    root: Path, pool: WorkerPool, workers: int = 2
) -> list[tuple[str, str, float, list[str]]]:
    """Batches run in parallel; a batch that overruns is re-run file by file, each with its own limit,
    so that the file that hangs is named and killed while the rest still get their outcome."""
    names = [p.relative_to(root).as_posix() for p in corpus_files(root)]
    batches = [names[i : i + BATCH] for i in range(0, len(names), BATCH)]

    def run_batch(batch: list[str]) -> list[tuple[str, str, float, list[str]]]:
        try:
            return pool.run(parse_files, str(root), batch, timeout=PER_FILE_SECONDS * 3)
        except WorkFailed:
            results = []
            for name in batch:
                try:
                    results += pool.run(parse_files, str(root), [name], timeout=PER_FILE_SECONDS)
                except WorkFailed as error:
                    results.append(
                        (name, f"worker {error.kind}: {error.message}", PER_FILE_SECONDS, [])
                    )
            return results

    with ThreadPoolExecutor(max_workers=workers) as executor:
        return [row for rows in executor.map(run_batch, batches) for row in rows]


@pytest.fixture(scope="module")
def corpus(shared_dir: Path) -> Path:
    root = shared_dir / "realworld" / "feedparser-tests"
    if not root.is_dir():
        pytest.skip(f"{root} is not there: feedparser's test corpus is needed for these tests")
    return root


@pytest.fixture(scope="module")
def corpus_run(corpus: Path) -> dict:
    started = time.monotonic()
    with WorkerPool(2, timeout=PER_FILE_SECONDS) as pool:
        rows = run_corpus(corpus, pool)
    elapsed = time.monotonic() - started
    counts = Counter(outcome for _, outcome, _, _ in rows)
    slowest = max(rows, key=lambda row: row[2])
    print(
        f"\nfeedparser corpus: {len(rows)} files in {elapsed:.1f} s, outcomes {dict(counts)}, "
        f"slowest {slowest[0]} {slowest[2]:.2f} s"
    )
    return {"rows": rows, "counts": counts, "elapsed": elapsed}


def test_every_file_is_a_feed_or_a_feed_parse_error(corpus, corpus_run):
    rows = corpus_run["rows"]
    assert len(rows) == len(corpus_files(corpus)) >= 2200
    strays = [(name, outcome) for name, outcome, _, _ in rows if outcome not in OUTCOMES]
    assert not strays, strays[:20]
    # Most of the corpus is well-formed feeds; a parse step that rejected them would pass the line above.
    wellformed = [outcome for name, outcome, _, _ in rows if name.startswith("wellformed/")]
    assert wellformed.count("parsed") >= 0.99 * len(wellformed)


def test_every_file_parses_within_the_time_limit(corpus_run):
    slow = [
        (name, round(seconds, 2))
        for name, _, seconds, _ in corpus_run["rows"]
        if seconds >= PER_FILE_SECONDS
    ]
    assert not slow, slow


def test_parsed_entries_have_web_links_and_one_line_text(corpus_run):
    problems = [(name, problem) for name, _, _, found in corpus_run["rows"] for problem in found]
    assert not problems, problems[:20]


@pytest.mark.parametrize(
    ("name", "encoding", "expected"),
    [
        ("gzip.gz", "gzip", "parsed"),
        ("deflate.z", "deflate", "parsed"),
        (
            "deflate-no-headers.z",
            "deflate",
            "parsed",
        ),  # a bare deflate stream, as some servers send
        ("gzip-struct-error.gz", "gzip", "http"),
        ("gzip-not-compressed.gz", "gzip", "http"),
        ("deflate-not-compressed.z", "deflate", "http"),
    ],
)
def test_compressed_corpus_files_served_with_their_content_encoding(
    corpus, site, name, encoding, expected
):
    """feedparser's compression cases, served as its own test server serves them."""
    site.routes[f"/{name}"] = Resource(
        (corpus / "compression" / name).read_bytes(),
        "application/atom+xml",
        headers={"Content-Encoding": encoding},
    )
    limits = FetchLimits(max_bytes=64 * 1024, connect_timeout=2.0, deadline=4.0)
    with make_client("atlaswatch-test", 2.0, LOOPBACK) as http:
        try:
            result = fetch(http, f"{site.url}/{name}", limits, LOOPBACK, accept=FEED_ACCEPT)
        except FetchError as error:
            assert error.kind == expected and "corrupt compressed body" in error.message
            return
    assert expected == "parsed"
    parsed = parse_feed(result.content, result.final_url, content_type=result.content_type)
    assert parsed.version == "atom10" and parsed.entries == []
