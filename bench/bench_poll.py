"""Poll benchmark: a repeat poll of unchanged feeds, 1,000 new articles against the bare floor,
and the peak memory of that poll.

    .venv/bin/python bench/bench_poll.py [--quick] [--profile] [--what-if]
                                         [--model PATH | --train-model] [--only repeat|volume]

Three measurements, each against a real HTTP server on 127.0.0.1 (flows.localserver):

a. Repeat poll: 200 feeds of 10 entries each (pages all served). A first poll stores
   everything; a second poll with force=True (every feed due) must fetch no page at all
   (checked on the server's hit counts; asserted) and its own time should stay under 3 s.
b. Volume: 1,000 new articles (20 feeds x 50 entries, 28-60 KB pages: flows.demo.render_page
   with a news site's weight of inline CSS, scripts, menus and links, and distinct text built
   from the sample articles, a quarter of them on-topic) go through the whole poll flow (fetch
   feeds, parse, fetch and extract pages, classify, store). The floor is a bare sequential
   loop of httpx GET (one client) + trafilatura.extract(include_comments=False) over the same
   pages. Target: poll <= 1.3 x floor.
c. Peak memory of that poll: getrusage maxrss, RUSAGE_SELF and RUSAGE_CHILDREN, plus each
   process's own peak (VmHWM) and the peak of their summed RSS, sampled from /proc. On Linux
   ru_maxrss survives exec, so a child reports at least its parent's peak at the time it was
   started: the poll process is started by a small launcher for that reason, but its workers
   are started by the poll process, so RUSAGE_CHILDREN is at least the poll process's size
   then, and the workers' own peaks come from VmHWM.

Every poll runs in a process of its own (this file with --child poll), so its figures cover
one poll, and the HTTP server's work and memory stay in this (the parent) process; the floor
also runs in a process of its own. With no PREFECT_API_URL each poll process starts Prefect's
temporary local server: that start-up is timed apart (import of the flow module, then a first
and a second empty flow run: start-up = first - second) and is not part of the poll's time.
The poll's "own" time is Prefect's start_time -> end_time of the poll-feeds flow run; "call"
is the wall time of the flow call (flow-run creation and result handling added). The ratio
uses the call time. After each volume poll its process also runs a flow of as many empty
tasks as the poll had task runs, submitted the same way, for Prefect's own CPU per task run
(client, and server less its idle load).

The local server must send with TCP_NODELAY: with Nagle's algorithm on, a response written as
headers then body waits ~40 ms for the client's delayed ACK, which no real server does.
flows.localserver now sets it; on an older checkout the benchmark sets it in its own process.

Results: a table on stdout and bench/results/poll.json (git-ignored). Step timers (two
perf_counter calls per step) are always on. --profile adds a cProfile of every thread of a
repeat and a volume poll (bench/results/poll-profile-*.txt), the repeat poll's work done
without Prefect, and per-article costs of each piece of work. --what-if re-runs the polls with
suggested fixes patched into the poll process (no file is changed), one by one and together.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS_DIR = REPO / "bench" / "results"
TARGETS = {"repeat_poll_own_seconds": 3.0, "ratio": 1.3}
LANGS = ("en", "fr", "es", "ar")
MB = 1024 * 1024


@dataclass(frozen=True)
class Scale:
    repeat_feeds: int
    repeat_entries: int
    volume_feeds: int
    volume_entries: int
    # Floor and poll measured in turn this many times: on a shared machine one pair can be
    # 15 % off; the pair with the median ratio is reported.
    volume_rounds: int


FULL = Scale(
    repeat_feeds=200, repeat_entries=10, volume_feeds=20, volume_entries=50, volume_rounds=3
)
QUICK = Scale(
    repeat_feeds=20, repeat_entries=10, volume_feeds=5, volume_entries=20, volume_rounds=1
)


# --------------------------------------------------------------------------------------------
# The test site: distinct articles built from the sample articles, realistic page weight.
# --------------------------------------------------------------------------------------------

SENTENCE_END = re.compile(r"(?<=[.!?؟])\s+")


class TextPool:
    """Sentences and words of the sample articles, per language.

    Each generated article follows one sample article (its template): half its sentences are
    the template's, the rest come from the same language's off-topic samples, and about a
    quarter of all words are swapped for others of the same language. So relevance follows the
    template (RELEVANT_SHARE of the templates are on-topic), while no two articles share more
    than stray word 3-grams: near-duplicate detection stays quiet, as on a day of distinct news.
    """

    def __init__(self, samples: list[dict[str, Any]]):
        self.samples = {lang: [a for a in samples if a["lang"] == lang] for lang in LANGS}
        self.sentences: dict[str, list[str]] = {}
        self.off_topic: dict[str, list[str]] = {}
        self.words: dict[tuple[str, bool], list[str]] = {}
        self.comments: dict[str, list[dict[str, str]]] = {}
        for lang, items in self.samples.items():
            for item in items:
                self.sentences[item["slug"]] = self._split(item)
            self.off_topic[lang] = [
                s for a in items if not a["expected"]["relevant"] for s in self._split(a)
            ]
            # Off-topic articles borrow words from off-topic samples only.
            for relevant in (True, False):
                self.words[lang, relevant] = [
                    w
                    for a in items
                    if relevant or not a["expected"]["relevant"]
                    for s in self._split(a)
                    for w in s.split()
                    if w.isalpha()
                ]
            self.comments[lang] = [c for a in items for c in a.get("comments", [])]

    @staticmethod
    def _split(article: dict[str, Any]) -> list[str]:
        return [s for p in article["paragraphs"] for s in SENTENCE_END.split(p) if s]

    def template(self, rng: random.Random, lang: str, relevant_share: float) -> dict[str, Any]:
        relevant = rng.random() < relevant_share
        return rng.choice([a for a in self.samples[lang] if a["expected"]["relevant"] == relevant])

    def sentence(self, rng: random.Random, lang: str, template: dict[str, Any]) -> str:
        pool = self.sentences[template["slug"]] if rng.random() < 0.5 else self.off_topic[lang]
        vocabulary = self.words[lang, template["expected"]["relevant"]]
        return " ".join(
            rng.choice(vocabulary) if rng.random() < 0.25 else w for w in rng.choice(pool).split()
        )

    def paragraph(self, rng: random.Random, lang: str, template: dict[str, Any]) -> str:
        return " ".join(self.sentence(rng, lang, template) for _ in range(rng.randint(2, 4)))

    def title(self, rng: random.Random, lang: str, template: dict[str, Any], number: int) -> str:
        vocabulary = self.words[lang, template["expected"]["relevant"]]
        words = [
            rng.choice(vocabulary) if rng.random() < 0.3 else w for w in template["title"].split()
        ]
        return f"{' '.join(words)} ({number})"


# Share of the generated articles that are on-topic (the feeds atlaswatch polls mostly are not).
RELEVANT_SHARE = 0.25


def make_article(
    pool: TextPool,
    rng: random.Random,
    feed: dict[str, str],
    number: int,
    published: datetime,
    paragraphs: tuple[int, int],
) -> dict[str, Any]:
    lang = feed["lang"]
    template = pool.template(rng, lang, RELEVANT_SHARE)
    body = [pool.paragraph(rng, lang, template) for _ in range(rng.randint(*paragraphs))]
    comments = [
        {
            "author": f"{c['author']}{rng.randint(1, 99)}",
            "text": pool.sentence(rng, lang, template) + " " + c["text"],
        }
        for c in rng.sample(pool.comments[lang], k=min(len(pool.comments[lang]), rng.randint(2, 6)))
    ]
    return {
        "slug": f"story-{number:05d}",
        "outlet": feed["outlet"],
        "domain": feed["domain"],
        "lang": lang,
        "feed": feed["id"],
        "section": template.get("section", "news"),
        "title": pool.title(rng, lang, template, number),
        "author": template["author"],
        "published": published.isoformat(timespec="seconds"),
        "summary": body[0][:200],
        "paragraphs": body,
        "comments": comments,
        "template_relevant": template["expected"]["relevant"],
    }


def boilerplate(rng: random.Random, base: str, outlet: str) -> tuple[str, str, str]:
    """(head, menu, footer) of a news site's page: inline CSS and scripts (analytics, ad and app
    state), a mega-menu and a footer of links, as real pages carry them."""
    css = "\n".join(
        f".c{i}-{rng.randint(0, 999)} {{ margin: {rng.randint(0, 24)}px {rng.randint(0, 24)}px; "
        f"color: #{rng.randint(0, 0xFFFFFF):06x}; font: {rng.randint(11, 28)}px/1.{rng.randint(2, 6)} "
        f"'Source Sans', Helvetica, sans-serif; }}"
        for i in range(rng.randint(60, 160))
    )
    state = {
        "config": {
            "site": outlet,
            "ads": [
                {
                    "slot": f"div-gpt-ad-{i}",
                    "sizes": [[300, 250], [728, 90]],
                    "targeting": {"pos": i, "kw": rng.sample(range(1000), 8)},
                }
                for i in range(rng.randint(10, 30))
            ],
        },
        "experiments": {f"exp_{i}": rng.random() for i in range(rng.randint(20, 80))},
    }
    script = (
        f"<script>window.__APP_STATE__ = {json.dumps(state)};</script>\n"
        "<script>(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),"
        "event:'gtm.js'});var f=d.getElementsByTagName(s)[0],j=d.createElement(s);j.async=true;"
        "j.src='https://www.googletagmanager.com/gtm.js?id='+i;f.parentNode.insertBefore(j,f);"
        "})(window,document,'script','dataLayer','GTM-XXXX');</script>"
    )
    head = f"<style>\n{css}\n</style>\n{script}\n"
    sections = ["Politics", "World", "Economy", "Defence", "Regions", "Culture", "Sport", "Opinion"]
    menu = "\n".join(
        f'<li class="menu-item"><a href="{base}/{s.lower()}/{i}/">{s} {i}</a></li>'
        for s in sections
        for i in range(rng.randint(4, 12))
    )
    footer = "\n".join(
        f'<li><a href="{base}/page/{i}">{html.escape(outlet)} page {i}</a></li>'
        for i in range(rng.randint(40, 100))
    )
    return head, menu, footer


def render_article_page(
    article: dict[str, Any],
    related: list[dict[str, Any]],
    base: str,
    rng: random.Random,
    heavy: bool,
) -> bytes:
    """flows.demo.render_page, plus (heavy) the weight of a real news page around it."""
    from flows.demo import render_page

    page = render_page(article, related, base).decode()
    if not heavy:
        return page.encode()
    head, menu, footer = boilerplate(rng, base, article["outlet"])
    page = page.replace("</head>", head + "</head>", 1)
    page = page.replace('<nav class="main-menu"><ul>', '<nav class="main-menu"><ul>\n' + menu, 1)
    page = page.replace("</footer>", f'<ul class="footer-links">\n{footer}\n</ul></footer>', 1)
    return page.encode()


def build_world(
    count_feeds: int, entries: int, base: str, *, seed: int, heavy: bool, prefix: str
) -> tuple[dict[str, Any], list[tuple[str, str]], list[str]]:
    """Routes (path -> Resource), feeds (path, name) and page URLs of `count_feeds` feeds of
    `entries` new articles each."""
    from flows.demo import load_sample_articles, page_path, render_atom, render_rss
    from flows.localserver import Resource

    rng = random.Random(seed)
    pool = TextPool(load_sample_articles())
    now = datetime.now(UTC).replace(microsecond=0)
    routes: dict[str, Any] = {}
    feeds: list[tuple[str, str]] = []
    urls: list[str] = []
    number = 0
    for index in range(count_feeds):
        lang = LANGS[index % len(LANGS)]
        feed = {
            "id": f"{prefix}-{index:03d}-{lang}",
            "lang": lang,
            "outlet": f"Outlet {prefix} {index}",
            "domain": f"{prefix}-outlet-{index:03d}.example",
        }
        articles = []
        for position in range(entries):
            number += 1
            published = now - timedelta(minutes=7 * position + index)
            articles.append(
                make_article(pool, rng, feed, number, published, (9, 16) if heavy else (3, 5))
            )
        for position, article in enumerate(articles):
            related = [
                articles[(position + k) % len(articles)] for k in range(1, 26 if heavy else 4)
            ]
            routes[page_path(article)] = Resource(
                render_article_page(article, related, base, rng, heavy)
            )
            urls.append(base + page_path(article))
        path = f"/feeds/{feed['id']}.xml"
        if lang == "fr":  # one language as Atom, as the demo site does
            routes[path] = Resource(
                render_atom(articles, base, feed["outlet"]), "application/atom+xml; charset=utf-8"
            )
        else:
            routes[path] = Resource(
                render_rss(articles, base, feed["outlet"]), "application/rss+xml; charset=utf-8"
            )
        feeds.append((path, feed["outlet"]))
    return routes, feeds, urls


def write_config(
    workdir: Path, site_url: str, feeds: list[tuple[str, str]], model: str = ""
) -> Path:
    """The loopback config with the production fetch settings (concurrency, workers, timeouts)
    left at their defaults."""
    from flows.localserver import write_loopback_config

    model_line = f'model = "{model}"\n' if model else ""
    return write_loopback_config(
        workdir, site_url, feeds, extra=f'[classifier]\nmodels_dir = "models"\n{model_line}'
    )


# --------------------------------------------------------------------------------------------
# The poll process (--child poll) and the floor process (--child floor).
# --------------------------------------------------------------------------------------------


def rusage_mb() -> dict[str, float]:
    """getrusage peaks, and (Linux) the peak of this process's own memory since its exec.

    On Linux ru_maxrss survives exec: a process started by a big one reports at least its
    parent's peak, and so does RUSAGE_CHILDREN for children started by a big process. The poll
    process is started by a small launcher for that reason; its workers are started by the
    poll process itself, so RUSAGE_CHILDREN is at least the poll process's size at that moment.
    VmHWM (/proc/self/status) counts this process's own pages only."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: kilobytes on Linux
    figures = {
        "self_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MB,
        "children_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / MB,
    }
    hwm = proc_status_kb(os.getpid(), "VmHWM")
    if hwm:
        figures["self_vmhwm_mb"] = hwm / 1024
    return figures


def _proc_kb(pid: int, file: str, key: str) -> int:
    """The kB figure on the `key:` line of /proc/<pid>/<file>; 0 when unknown."""
    try:
        with open(f"/proc/{pid}/{file}", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def proc_pss_kb(pid: int) -> int:
    """Proportional set size: the process's own pages plus its share of pages it shares."""
    return _proc_kb(pid, "smaps_rollup", "Pss")


def proc_status_kb(pid: int, key: str) -> int:
    return _proc_kb(pid, "status", key)


def cpu_seconds() -> dict[str, float]:
    times = os.times()
    return {
        "self": times.user + times.system,
        "children": times.children_user + times.children_system,
    }


class StepTimer:
    """Wall time and calls of the plain steps the flow runs (summed over threads)."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        # Reset when the poll is called: "from" and "to" count from it.
        self.origin = time.perf_counter()

    def wrap(self, owner: Any, name: str, label: str | None = None) -> None:
        original = getattr(owner, name, None)
        if original is None:  # the step was renamed or removed: nothing to time
            return
        label = label or f"{owner.__name__}.{name}"
        timer = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                with timer.lock:
                    entry = timer.totals.setdefault(label, [0.0, 0, started, ended])
                    entry[0] += ended - started
                    entry[1] += 1
                    entry[2], entry[3] = min(entry[2], started), max(entry[3], ended)

        timed.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(owner, name, timed)

    def report(self) -> dict[str, dict[str, float]]:
        """Per step: wall seconds summed over calls (and threads), calls, span (first start to
        last end: the wall time of a phase whose calls overlap), and when the phase began and
        ended, counted from the poll's call."""
        return {
            k: {
                "seconds": round(v[0], 3),
                "calls": v[1],
                "span": round(v[3] - v[2], 3),
                "from": round(v[2] - self.origin, 3),
                "to": round(v[3] - self.origin, 3),
            }
            for k, v in sorted(self.totals.items(), key=lambda kv: -kv[1][0])
        }


def install_step_timers() -> StepTimer:
    """Timers around the steps, patched in this process only (no file is changed)."""
    import flows.pipeline as pipeline
    import flows.poll as poll
    import flows.workers as workers
    import storage.articles as articles
    import storage.feeds as feeds

    timer = StepTimer()
    for name in (
        "fetch_feed",
        "parse_fetched",
        "select_new",
        "fetch_article",
        "classification_rows",
        "store_feed_poll",
        "fetch",
        "fingerprint",
    ):
        timer.wrap(poll, name)
    timer.wrap(workers.WorkerPool, "run", "WorkerPool.run (send, work in child, receive)")
    timer.wrap(workers.Worker, "__init__", "Worker start (fork)")
    timer.wrap(workers.WorkerPool, "close", "WorkerPool.close")
    for name in ("_store_batch", "_finish_poll", "_fetch_and_parse"):
        timer.wrap(pipeline, name)
    timer.wrap(poll.BatchClassifier, "rows", "BatchClassifier.rows (classify in a worker)")
    timer.wrap(poll.BatchClassifier, "backlog", "BatchClassifier.backlog")
    timer.wrap(articles, "unclassified_articles")
    timer.wrap(feeds, "sync_feeds")
    timer.wrap(feeds, "due_feeds")
    timer.wrap(pipeline.Progress, "advance", "Progress.advance (UI progress artifact)")
    return timer


class ThreadProfiles:
    """cProfile in every thread started after install() (Python 3.11 profiles one thread per
    Profile object); merged into one pstats report."""

    def __init__(self) -> None:
        import cProfile

        self._cprofile = cProfile
        self.profiles: list[Any] = []
        self.main = cProfile.Profile()

    def _start_in_thread(self, *_args: Any) -> None:
        sys.setprofile(None)
        profile = self._cprofile.Profile()
        self.profiles.append(profile)
        profile.enable()

    def install(self) -> None:
        threading.setprofile(self._start_in_thread)
        self.main.enable()

    def stop(self) -> None:
        self.main.disable()
        threading.setprofile(None)
        for profile in self.profiles:
            profile.disable()

    def write(self, path: Path, limit: int = 60) -> None:
        import io
        import pstats

        out = io.StringIO()
        stats = pstats.Stats(self.main, stream=out)
        for profile in self.profiles:
            try:
                stats.add(profile)
            except TypeError:  # a thread that never ran a profiled call
                continue
        out.write("### all threads, by own time (tottime)\n")
        stats.sort_stats("tottime").print_stats(limit)
        out.write(
            "\n### all threads, by cumulative time (threads overlap: sums exceed wall time)\n"
        )
        stats.sort_stats("cumulative").print_stats(limit)
        main_out = io.StringIO()
        pstats.Stats(self.main, stream=main_out).sort_stats("cumulative").print_stats(limit)
        path.write_text(
            out.getvalue() + "\n### main thread only, cumulative\n" + main_out.getvalue(),
            encoding="utf-8",
        )


def clock_seconds(pid: int, reaped_children: bool = False) -> float:
    """user + system CPU of a live process (Linux /proc), with that of the children it has
    reaped if asked; 0 when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return sum(map(int, fields[11 : 15 if reaped_children else 13])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used since boot (every core), from /proc/stat:
    the poll's whole cost, whichever process spent it."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = handle.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def prefect_server_pids() -> list[int]:
    """The temporary Prefect server this process started (a uvicorn child)."""
    if not sys.platform.startswith("linux"):
        return []
    return [
        pid
        for pid, kind in TreeSampler._descendants(os.getpid()).items()
        if kind == "prefect_server"
    ]


def _patched_extract_page(*args: Any, patches: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """flows.extract.extract_page, as it is now, with what-if patches applied in the worker
    process: no-fingerprint."""
    import flows.extract as extract

    if "no-fingerprint" in patches and hasattr(extract, "fingerprint"):
        extract.fingerprint = lambda title, text: ""
    return extract.extract_page(*args, **kwargs)


EXPERIMENTS = {
    "no-classify": "no classification at all (bounds what a faster classifier could save)",
    "no-progress": "no progress-artifact updates",
    "no-fingerprint": "no MinHash fingerprint (bounds what a faster one could save)",
}


def _no_classify() -> None:
    """Articles stored unclassified, and no backlog pass to catch them up."""
    import flows.poll as poll

    def unclassified(self: Any, articles: list[dict], what: str) -> list[dict]:
        for article in articles:
            article["lang"] = "und"
        return []

    poll.BatchClassifier.rows = unclassified
    poll.BatchClassifier.backlog = lambda self: 0


def _worker_patch(name: str) -> None:
    """Route extraction through _patched_extract_page with `name` added to its patches."""
    import functools

    import flows.poll as poll

    current = poll.extract_page
    patches = (
        (*current.keywords["patches"], name) if isinstance(current, functools.partial) else (name,)
    )
    poll.extract_page = functools.partial(_patched_extract_page, patches=patches)


def _no_progress() -> None:
    import flows.pipeline as pipeline

    pipeline.Progress.advance = lambda self, *_: None
    pipeline.Progress.finish = lambda self: None


def _no_fingerprint() -> None:
    import flows.poll as poll

    poll.fingerprint = lambda title, text: ""  # the fallback in the poll process
    _worker_patch("no-fingerprint")  # and the worker's, where extract_page computes it


PATCHES: dict[str, Callable[[], None]] = {
    "no-classify": _no_classify,
    "no-progress": _no_progress,
    "no-fingerprint": _no_fingerprint,
}


def apply_experiments(names: list[str]) -> None:
    """Patch this poll process (no file changes) to try the fixes suggested by the profile."""
    for name in names:
        if name not in PATCHES:
            raise SystemExit(f"unknown experiment {name}; known: {sorted(PATCHES)}")
        PATCHES[name]()


# Long enough for Prefect's server to record what a flow run's tasks reported.
SERVER_SETTLE_SECONDS = 2.0


def prefect_task_cost(servers: list[int], tasks: int) -> dict[str, float]:
    """Prefect's own CPU per task run, client and server, from a flow that submits `tasks`
    empty tasks the way the poll submits its own, less the same flow with none."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.pipeline import FEED_CONCURRENCY

    @task(name="bench-empty-task", cache_policy=NO_CACHE)
    def nothing(number: int) -> int:
        return number

    @flow(name="bench-empty-tasks", task_runner=ThreadPoolTaskRunner(FEED_CONCURRENCY))
    def submitted(count: int) -> None:
        for future in [nothing.submit(number) for number in range(count)]:
            future.result()

    def cpu_of(count: int) -> tuple[float, float]:
        server, client = sum(clock_seconds(pid) for pid in servers), time.process_time()
        submitted(count)
        time.sleep(SERVER_SETTLE_SECONDS)
        return time.process_time() - client, sum(clock_seconds(pid) for pid in servers) - server

    cpu_of(2)  # the first task runs of a process pay for imports
    idle_client, idle_server = cpu_of(0)
    client, server = cpu_of(tasks)
    return {
        "tasks": tasks,
        "client_ms": max(client - idle_client, 0.0) * 1000 / tasks,
        "server_ms": max(server - idle_server, 0.0) * 1000 / tasks,
    }


def child_poll(args: argparse.Namespace) -> int:
    """One poll in a process of its own; writes its figures as JSON to args.out."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if not os.environ.get("PREFECT_HOME"):
        raise SystemExit("the parent sets PREFECT_HOME")
    from flows.prefect_env import configure_prefect
    from flows.settings import load_settings

    settings = load_settings(args.config)
    configure_prefect(settings)

    started = time.perf_counter()
    from prefect import flow
    from prefect.client.orchestration import get_client

    from flows.pipeline import poll_feeds

    imported = time.perf_counter()
    from multiprocessing import forkserver

    from flows.modelstore import current_model_path, start_worker_server_with
    from flows.prefect_env import direct_flow_runs
    from storage import open_database

    # As the CLI does: the worker server imports and loads the model while Prefect starts.
    start_worker_server_with(current_model_path(settings, open_database(settings.storage.path)))

    flow_runs = contextlib.ExitStack()  # held to the end: as the CLI calls its flows
    flow_runs.enter_context(direct_flow_runs())

    @flow(name="bench-empty")
    def empty() -> None:
        return None

    rss_imported = proc_status_kb(os.getpid(), "VmRSS") / 1024
    empty()
    first = time.perf_counter()
    empty()
    second = time.perf_counter()
    rss_before = proc_status_kb(os.getpid(), "VmRSS") / 1024

    if args.experiment:
        apply_experiments(args.experiment.split(","))
    timer = install_step_timers()  # two perf_counter calls a step: no measurable cost
    profiles = ThreadProfiles() if args.profile else None
    if profiles:
        profiles.install()
    servers = prefect_server_pids()
    server_cpu = sum(clock_seconds(pid) for pid in servers)
    worker_server = forkserver._forkserver._forkserver_pid
    worker_server_start_cpu = clock_seconds(worker_server, reaped_children=True)
    threads_peak = [threading.active_count()]
    watcher_stop = threading.Event()

    def watch_threads() -> None:
        while not watcher_stop.wait(0.1):
            threads_peak[0] = max(threads_peak[0], threading.active_count())

    watcher = threading.Thread(target=watch_threads, daemon=True)
    watcher.start()
    cpu_before = cpu_seconds()
    busy_before = machine_busy_seconds()
    call_started = timer.origin = time.perf_counter()
    state = poll_feeds(args.config, force=args.force, return_state=True)
    call_seconds = time.perf_counter() - call_started
    machine_cpu = machine_busy_seconds() - busy_before
    cpu_after = cpu_seconds()
    workers_cpu = clock_seconds(worker_server, reaped_children=True) - worker_server_start_cpu
    memory = rusage_mb()  # before anything else can raise the peaks
    watcher_stop.set()
    server_cpu = sum(clock_seconds(pid) for pid in servers) - server_cpu
    if profiles:
        profiles.stop()
    summary = state.result()
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    own = (
        (run.end_time - run.start_time).total_seconds() if run.start_time and run.end_time else None
    )
    figures: dict[str, Any] = {
        "import_seconds": imported - started,
        "first_empty_flow_seconds": first - imported,
        "empty_flow_seconds": second - first,
        "prefect_server_start_seconds": (first - imported) - (second - first),
        "rss_after_import_mb": rss_imported,
        "rss_before_poll_mb": rss_before,
        "rss_after_poll_mb": proc_status_kb(os.getpid(), "VmRSS") / 1024,
        "poll_call_seconds": call_seconds,
        "poll_own_seconds": own,
        "state": state.type.value,
        "worker_server_start_cpu_seconds": worker_server_start_cpu,
        "cpu_seconds": {
            "self": cpu_after["self"] - cpu_before["self"],
            "children": cpu_after["children"] - cpu_before["children"] + workers_cpu,
            "prefect_server": server_cpu,
            "machine": machine_cpu,
        },
        "threads_peak": threads_peak[0],
        "memory": memory,
        "summary": {k: v for k, v in summary.items() if k != "per_feed"},
        "outcomes": _count(info["outcome"] for info in summary["per_feed"].values()),
    }
    figures["steps"] = timer.report()
    # fetch-feed for each due feed, fetch-articles for each with new entries
    task_runs = len(summary["per_feed"]) + figures["outcomes"].get("new", 0)
    if args.task_cost and task_runs:
        figures["prefect_task_cost"] = prefect_task_cost(servers, task_runs)
    if profiles:
        path = Path(args.out).with_suffix(".profile.txt")
        profiles.write(path)
        figures["profile_file"] = str(path)
    Path(args.out).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    return 0


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def child_floor(args: argparse.Namespace) -> int:
    """The floor: a bare sequential loop of httpx GET + trafilatura.extract over the pages."""
    import httpx
    import trafilatura

    urls = json.loads(Path(args.urls).read_text("utf-8"))
    extracted = chars = 0
    with httpx.Client(trust_env=False) as client:  # one client: keep-alive, as the poll has
        started = time.perf_counter()
        cpu_started = time.process_time()
        for url in urls:
            response = client.get(url)
            response.raise_for_status()
            text = trafilatura.extract(response.text, include_comments=False)
            extracted += bool(text)
            chars += len(text or "")
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    figures = {
        "floor_seconds": seconds,
        "floor_cpu_seconds": cpu,
        "pages": len(urls),
        "extracted": extracted,
        "text_chars": chars,
        "memory": rusage_mb(),
    }
    Path(args.out).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


def child_plain_repeat(args: argparse.Namespace) -> int:
    """The repeat poll's work without Prefect (--profile): every feed fetched from one thread pool
    and each unchanged feed recorded as pipeline.poll_feeds records it. Shows Prefect's share."""
    from concurrent.futures import ThreadPoolExecutor

    from flows import poll as steps
    from flows.fetch import make_client
    from flows.settings import load_settings
    from storage import feeds as feed_store
    from storage import open_database

    started = time.perf_counter()
    cpu = time.process_time()
    settings = load_settings(args.config)
    db = open_database(settings.storage.path)
    now = datetime.now(UTC)
    feed_store.sync_feeds(db, ((f.url, f.name) for f in settings.feeds), now)
    due = feed_store.due_feeds(db, now, None, ignore_schedule=True)
    with (
        make_client(
            settings.fetch.user_agent, settings.fetch.connect_timeout, steps.policy_from(settings)
        ) as http,
        ThreadPoolExecutor(max_workers=16) as executor,
    ):
        results = list(executor.map(lambda feed: steps.fetch_feed(http, feed, settings), due))
    unchanged = 0
    for feed, result in zip(due, results, strict=True):
        if result.not_modified or steps.body_hash(result.content) == feed.get("body_hash"):
            steps.store_feed_poll(db, feed, result, [], [], settings, now, 0)
            unchanged += 1
    figures = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "feeds": len(due),
        "unchanged": unchanged,
    }
    Path(args.out).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


def child_components(args: argparse.Namespace) -> int:
    """Per-article cost of each piece of work, one thread, on a sample of the pages (--profile)."""
    import pickle

    import httpx
    import trafilatura

    from flows.dedupe import fingerprint
    from flows.extract import extract_page

    urls = json.loads(Path(args.urls).read_text("utf-8"))[: args.sample]
    with httpx.Client(trust_env=False) as client:
        started = time.perf_counter()
        pages = [(url, client.get(url)) for url in urls]
        fetch_ms = (time.perf_counter() - started) * 1000 / len(urls)
    pages = [(url, r.content, r.headers.get("content-type", "")) for url, r in pages]
    extracted: list[dict] = []

    def per_page(label: str, work: Callable[[str, bytes, str], Any]) -> float:
        work(*pages[0])  # warm
        started = time.perf_counter()
        for page in pages:
            work(*page)
        return round((time.perf_counter() - started) * 1000 / len(pages), 2)

    figures: dict[str, Any] = {
        "pages": len(pages),
        "ms_per_page": {"httpx GET (one client)": round(fetch_ms, 2)},
    }
    costs = figures["ms_per_page"]
    costs["floor: trafilatura.extract(include_comments=False)"] = per_page(
        "floor",
        lambda url, body, ctype: trafilatura.extract(body.decode("utf-8"), include_comments=False),
    )
    costs["poll worker: extract_page, feed with title and date (as here; fingerprint included)"] = (
        per_page(
            "poll",
            lambda url, body, ctype: extracted.append(
                extract_page(body, ctype, url, "A title", metadata=False)
            ),
        )
    )
    costs["  the same for a feed without them (trafilatura's metadata pass)"] = per_page(
        "meta", lambda url, body, ctype: extract_page(body, ctype, url)
    )
    texts = extracted[-len(pages) :]
    costs["pickle round trip of page + result (pipe to worker)"] = per_page(
        "pickle", lambda url, body, ctype: pickle.loads(pickle.dumps((url, body, ctype)))
    )
    started = time.perf_counter()
    for item in texts:
        fingerprint(item["title"], item["text"])
    costs["poll process: flows.dedupe.fingerprint"] = round(
        (time.perf_counter() - started) * 1000 / len(texts), 2
    )
    model_path = args.config or None  # the model path travels in --config for this child
    try:
        import classifiers

        model = classifiers.load_model(model_path)
    except Exception as error:
        figures["classifier"] = f"not measured: {error}"
    else:
        docs = [{"title": t["title"], "text": t["text"]} for t in texts]
        model.classify(docs[:5], explain=True)
        for explain in (False, True):
            started = time.perf_counter()
            results = model.classify(docs, explain=explain)
            label = "poll process: classify" if not explain else "digest: classify with evidence"
            costs[label] = round((time.perf_counter() - started) * 1000 / len(docs), 2)
        figures["relevant_share"] = round(sum(r["relevant"] for r in results) / len(results), 3)
    Path(args.out).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------------------------
# The parent: server, scenarios, table.
# --------------------------------------------------------------------------------------------


class TreeSampler:
    """Memory of a process and its descendants from /proc twice a second (Linux): each process's
    own peak (VmHWM, its pages only, whatever started it) by kind, and the peak of the summed
    proportional set sizes of the poll process, the worker server and the workers."""

    KINDS = ("worker", "prefect_server", "other")

    def __init__(self, pid: int):
        self.pid = pid
        self.own_peaks: dict[int, tuple[str, int]] = {}
        self.sum_peak_kb = 0
        self.workers_sum_peak_kb = 0
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _descendants(pid: int) -> dict[int, str]:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                    parents[int(entry)] = int(fields[1])
                except (OSError, IndexError, ValueError):
                    continue
        found: dict[int, str] = {}
        frontier = [pid]
        while frontier:
            current = frontier.pop()
            for child, parent in parents.items():
                if parent == current and child not in found:
                    kind = TreeSampler._kind(child)
                    # A worker keeps the command line of the worker server it was forked from.
                    found[child] = "worker" if kind == "worker_server" and current != pid else kind
                    frontier.append(child)
        return found

    @staticmethod
    def _kind(pid: int) -> str:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return "other"
        if "uvicorn" in cmdline or "prefect" in cmdline:
            return "prefect_server"
        if "resource_tracker" in cmdline:
            return "other"
        if "forkserver" in cmdline:
            return "worker_server"
        if "multiprocessing" in cmdline:
            return "worker"
        return "other"

    def _sample(self) -> None:
        tree = {self.pid: "poll_process", **self._descendants(self.pid)}
        total = workers = 0
        for pid, kind in tree.items():
            hwm = proc_status_kb(pid, "VmHWM")
            if hwm:
                self.own_peaks[pid] = (kind, max(hwm, self.own_peaks.get(pid, (kind, 0))[1]))
            if kind in ("poll_process", "worker", "worker_server"):
                pss = proc_pss_kb(pid)  # workers share the worker server's pages: count them once
                total += pss
                workers += pss if kind == "worker" else 0
        self.sum_peak_kb = max(self.sum_peak_kb, total)
        self.workers_sum_peak_kb = max(self.workers_sum_peak_kb, workers)

    def _run(self) -> None:
        started = time.thread_time()
        # Twice a second: VmHWM is the kernel's own peak, and reading the proportional set
        # size walks a process's page tables (at ten times a second, the sampler took a tenth
        # of a core from the poll it measures).
        while not self._stop.wait(0.5):
            self._sample()
        self.cpu_seconds = time.thread_time() - started

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(2)
        by_kind: dict[str, list[float]] = {}
        for kind, peak in self.own_peaks.values():
            by_kind.setdefault(kind, []).append(round(peak / 1024, 1))
        return {
            "own_peaks_mb": {k: sorted(v, reverse=True) for k, v in by_kind.items()},
            "sampler_cpu_seconds": round(self.cpu_seconds, 2),
            "poll_plus_workers_mb": round(self.sum_peak_kb / 1024, 1),
            "workers_together_mb": round(self.workers_sum_peak_kb / 1024, 1),
        }


class Launcher:
    """Starts the poll and floor processes from a small process started before this one grew
    (pages, server): on Linux a child's maxrss starts at its parent's, so children of a big
    parent would report the parent's peak as their own."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", "launcher"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def start(self, command: list[str], cwd: Path, env: dict[str, str], log: Path) -> int:
        assert self._process.stdin and self._process.stdout
        request = {"command": command, "cwd": str(cwd), "env": env, "log": str(log)}
        self._process.stdin.write(json.dumps(request) + "\n")
        return int(self._process.stdout.readline())

    def wait(self) -> int:
        assert self._process.stdout
        return int(self._process.stdout.readline())

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait(10)


def child_launcher() -> int:
    """The launcher's loop: one JSON request a line; answers the pid, then the exit code."""
    for line in sys.stdin:
        request = json.loads(line)
        with open(request["log"], "wb") as log:
            process = subprocess.Popen(
                request["command"],
                cwd=request["cwd"],
                env=request["env"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            print(process.pid, flush=True)
            print(process.wait(), flush=True)
    return 0


LAUNCHER: Launcher | None = None


def run_child(
    kind: str,
    workdir: Path,
    log_name: str,
    env: dict[str, str],
    extra: list[str],
    sample: bool = False,
) -> dict[str, Any]:
    assert LAUNCHER is not None
    out = workdir / f"{log_name}.json"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--out",
        str(out),
        *extra,
    ]
    pid = LAUNCHER.start(command, workdir, env, workdir / f"{log_name}.log")
    sampler = TreeSampler(pid) if sample and sys.platform.startswith("linux") else None
    if sampler:
        sampler.start()
    code = LAUNCHER.wait()
    sampled = sampler.stop() if sampler else {}
    if code != 0 or not out.is_file():
        tail = (workdir / f"{log_name}.log").read_text("utf-8", "replace")[-3000:]
        raise RuntimeError(f"{kind} child ({log_name}) failed with exit code {code}:\n{tail}")
    figures = json.loads(out.read_text("utf-8"))
    if sampled:
        figures["sampled_peaks"] = sampled
    return figures


def page_hits(server: Any) -> int:
    return sum(count for path, count in server.hits.items() if not path.startswith("/feeds/"))


def feed_hits(server: Any) -> int:
    return sum(count for path, count in server.hits.items() if path.startswith("/feeds/"))


@contextlib.contextmanager
def served_world(
    workdir: Path, count_feeds: int, entries: int, model: str, **world: Any
) -> Iterator[tuple[Any, list[tuple[str, str]], list[str], Path]]:
    """A local server with a world of `count_feeds` feeds of `entries` new articles (see
    build_world) and a config for it in `workdir`: (server, feeds, page URLs, config)."""
    from flows.localserver import LocalServer

    workdir.mkdir(parents=True)
    with LocalServer() as server:
        routes, feeds, urls = build_world(count_feeds, entries, server.url, **world)
        server.routes.update(routes)
        yield server, feeds, urls, write_config(workdir, server.url, feeds, model)


def repeat_scenario(
    scale: Scale,
    workdir: Path,
    env: dict[str, str],
    options: argparse.Namespace,
    model: str,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    with served_world(
        workdir, scale.repeat_feeds, scale.repeat_entries, model, seed=1, heavy=False, prefix="r"
    ) as (server, feeds, urls, config):
        echo(
            f"[a] first poll: {len(feeds)} feeds x {scale.repeat_entries} entries ({len(urls)} pages)..."
        )
        first = run_child("poll", workdir, "repeat-first", env, ["--config", str(config)])
        pages_first, feeds_first = page_hits(server), feed_hits(server)
        echo("[a] repeat poll (force=True, nothing changed)...")
        second = run_child(
            "poll", workdir, "repeat-second", env, ["--config", str(config), "--force"]
        )
        page_fetches = page_hits(server) - pages_first
        feed_requests = feed_hits(server) - feeds_first
        profiled = None
        if options.profile:
            echo("[a] the repeat poll again with cProfile...")
            profiled = run_child(
                "poll",
                workdir,
                "repeat-profiled",
                env,
                ["--config", str(config), "--force", "--profile"],
            )
            echo("[a] the repeat poll's work without Prefect (plain steps, one thread pool)...")
            profiled["plain_steps"] = run_child(
                "plain-repeat", workdir, "repeat-plain", env, ["--config", str(config)]
            )
    assert first["summary"]["stored"] == len(urls), (
        f"first poll stored {first['summary']['stored']} of {len(urls)}"
    )
    assert page_fetches == 0, f"the repeat poll fetched {page_fetches} page(s)"
    assert second["summary"]["stored"] == 0, "the repeat poll stored articles"
    return {
        "feeds": len(feeds),
        "pages": len(urls),
        "first_poll": first,
        "repeat_poll": second,
        "profiled": profiled,
        "repeat_page_fetches": page_fetches,
        "repeat_feed_requests": feed_requests,
        "first_poll_page_fetches": pages_first,
    }


# Together: what the poll would cost with neither fingerprints nor progress updates; no-classify
# alone bounds the classifier's share.
FIXES = ["no-progress", "no-fingerprint"]
VOLUME_WHAT_IF = (
    ["no-classify"],
    ["no-fingerprint"],
    ["no-progress"],
    FIXES,
)


def fresh_database(workdir: Path) -> None:
    for name in ("atlaswatch.db", "atlaswatch.db-wal", "atlaswatch.db-shm"):
        (workdir / name).unlink(missing_ok=True)


def volume_scenario(
    scale: Scale,
    workdir: Path,
    env: dict[str, str],
    options: argparse.Namespace,
    model: str,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    with served_world(
        workdir, scale.volume_feeds, scale.volume_entries, model, seed=2, heavy=True, prefix="v"
    ) as (server, feeds, urls, config):
        sizes = sorted(len(r.body) for p, r in server.routes.items() if not p.startswith("/feeds/"))
        (workdir / "urls.json").write_text(json.dumps(urls), encoding="utf-8")
        echo(
            f"[b] floor: httpx + trafilatura over {len(urls)} pages "
            f"({sizes[0] // 1024}-{sizes[-1] // 1024} KB, median {sizes[len(sizes) // 2] // 1024} KB)..."
        )
        pairs = []
        for round_ in range(1, scale.volume_rounds + 1):
            if round_ > 1:
                fresh_database(workdir)
            server_cpu = cpu_seconds()["self"]
            floor = run_child(
                "floor", workdir, f"floor-{round_}", env, ["--urls", str(workdir / "urls.json")]
            )
            floor["local_server_cpu_seconds"] = cpu_seconds()["self"] - server_cpu
            hits_before = page_hits(server)
            echo(
                f"[b] poll of {len(feeds)} feeds x {scale.volume_entries} new articles "
                f"(round {round_} of {scale.volume_rounds}; floor {floor['floor_seconds']:.2f} s)..."
            )
            server_cpu = cpu_seconds()["self"]
            poll = run_child(
                "poll",
                workdir,
                f"volume-poll-{round_}",
                env,
                ["--config", str(config), "--task-cost"],
                sample=True,
            )
            poll["local_server_cpu_seconds"] = (
                cpu_seconds()["self"]
                - server_cpu
                - poll.get("sampled_peaks", {}).get("sampler_cpu_seconds", 0)
            )
            poll["page_fetches"] = page_hits(server) - hits_before
            pairs.append((poll["poll_call_seconds"] / floor["floor_seconds"], floor, poll))
        pairs.sort(key=lambda pair: pair[0])
        _, floor, poll = pairs[len(pairs) // 2]
        page_fetches = poll["page_fetches"]
        db_stats = _stored_stats(workdir / "atlaswatch.db")
        what_if = {}
        if options.what_if:
            for names in VOLUME_WHAT_IF:
                echo(f"[b] what if: the poll with {', '.join(names)} (fresh database)...")
                fresh_database(workdir)
                what_if[",".join(names)] = run_child(
                    "poll",
                    workdir,
                    "volume-" + "-".join(names),
                    env,
                    ["--config", str(config), "--experiment", ",".join(names)],
                )
        if options.profile:
            echo("[b] the same poll again with step timers and cProfile (fresh database)...")
            fresh_database(workdir)
            profiled = run_child(
                "poll", workdir, "volume-poll-profiled", env, ["--config", str(config), "--profile"]
            )
            echo("[b] per-article cost of each piece of work, one thread, 200 pages...")
            components = run_child(
                "components",
                workdir,
                "components",
                env,
                ["--urls", str(workdir / "urls.json"), "--config", model],
            )
        else:
            profiled = components = None
    assert poll["summary"]["stored"] == len(urls), (
        f"the poll stored {poll['summary']['stored']} of {len(urls)}"
    )
    return {
        "feeds": len(feeds),
        "pages": len(urls),
        "page_kb": {
            "min": sizes[0] / 1024,
            "median": sizes[len(sizes) // 2] / 1024,
            "max": sizes[-1] / 1024,
        },
        "floor": floor,
        "poll": poll,
        "rounds": [
            {
                "floor_seconds": f["floor_seconds"],
                "poll_seconds": p["poll_call_seconds"],
                "ratio": r,
            }
            for r, f, p in pairs
        ],
        "poll_page_fetches": page_fetches,
        "profiled": profiled,
        "components": components,
        "what_if": what_if,
        "stored": db_stats,
    }


def _stored_stats(db_path: Path) -> dict[str, Any]:
    from storage import open_database

    db = open_database(db_path)
    rows = list(
        db.query("SELECT extraction_status, count(*) AS n FROM articles GROUP BY extraction_status")
    )
    classified = next(db.query("SELECT count(*) AS n FROM classifications"))["n"]
    clusters = next(db.query("SELECT count(DISTINCT cluster_id) AS n FROM articles"))["n"]
    return {
        "extraction": {r["extraction_status"]: r["n"] for r in rows},
        "classified": classified,
        "story_clusters": clusters,
    }


def model_for_run(
    args: argparse.Namespace, workdir: Path, echo: Callable[[str], None]
) -> tuple[str, str]:
    """(model path for the config, how the poll classifies)."""
    if args.model:
        return str(Path(args.model).resolve()), f"model {args.model}"
    from classifiers import bundled_model_path

    if bundled_model_path().is_file():
        try:
            from classifiers import load_model

            load_model()
        except Exception as error:  # the poll will refuse it the same way and store unclassified
            if not args.train_model:
                return "", f"bundled model refused, articles stored unclassified ({error})"
        else:
            return "", f"bundled model {bundled_model_path().name}"
    if not args.train_model:
        return "", (
            f"no model: {bundled_model_path()} is missing, articles stored unclassified "
            "(re-run once it exists, or pass --train-model)"
        )
    # --train-model: the bundled model is missing or refused
    echo("training a stand-in model from the bundled corpus (not part of any figure)...")
    from classifiers import load_corpus, save_model, train

    path = workdir / "standin-model.skops"
    save_model(train(load_corpus("train")), path)
    return str(path), "stand-in model trained from the corpus by --train-model"


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="atlaswatch poll benchmark")
    parser.add_argument("--quick", action="store_true", help="a smaller run, for a smoke check")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also time the steps and cProfile the repeat poll and a second volume poll",
    )
    parser.add_argument(
        "--model", default="", help="a model file to classify with (default: bundled)"
    )
    parser.add_argument(
        "--train-model",
        action="store_true",
        help="when the bundled model is missing, train a stand-in into the work folder",
    )
    parser.add_argument("--only", choices=["repeat", "volume"], help="run one scenario")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (logs, databases)"
    )
    parser.add_argument(
        "--child",
        choices=["poll", "floor", "launcher", "components", "plain-repeat"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--sample", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--experiment", default="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="re-run the polls with suggested fixes patched in, one by one and together",
    )
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    parser.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task-cost", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "poll":
        return child_poll(args)
    if args.child == "floor":
        return child_floor(args)
    if args.child == "launcher":
        return child_launcher()
    if args.child == "components":
        return child_components(args)
    if args.child == "plain-repeat":
        return child_plain_repeat(args)

    global LAUNCHER
    LAUNCHER = Launcher()  # first, while this process is small
    from flows.localserver import _RequestHandler

    # A response's headers and body in two writes with Nagle's algorithm on wait ~40 ms a request
    # for the client's delayed ACK; a real server does not stall so. flows.localserver now turns
    # Nagle off itself; on an older checkout the benchmark does it, in its own process only.
    nodelay = "on (flows.localserver)"
    if not getattr(_RequestHandler, "disable_nagle_algorithm", False):
        _RequestHandler.disable_nagle_algorithm = True
        nodelay = "on (set by the benchmark)"

    scale = QUICK if args.quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="atlaswatch-bench-poll-"))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PREFECT_HOME": str(workdir / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PREFECT_API_URL", None)

    def echo(line: str) -> None:
        print(line, flush=True)

    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "scale": asdict(scale),
        "cpus": os.cpu_count(),
        "load_average_before": load_average(),
        "targets": TARGETS,
        "server_tcp_nodelay": nodelay,
    }
    try:
        model, results["classifier"] = model_for_run(args, workdir, echo)
        echo(f"classifier: {results['classifier']}")
        if args.only in (None, "repeat"):
            results["repeat"] = repeat_scenario(scale, workdir / "repeat", env, args, model, echo)
        if args.only in (None, "volume"):
            results["volume"] = volume_scenario(scale, workdir / "volume", env, args, model, echo)
        results["load_average_after"] = load_average()
        copy_profiles(results, args.quick)
    finally:
        LAUNCHER.close()
        if args.keep:
            echo(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    # A partial run (--only) does not overwrite the full figures.
    out = (
        RESULTS_DIR
        / f"poll{'-quick' if args.quick else ''}{'-' + args.only if args.only else ''}.json"
    )
    out.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    ok = print_table(results)
    echo(f"\nfigures written to {out.relative_to(REPO)}")
    return 0 if ok else 1


def copy_profiles(results: dict[str, Any], quick: bool) -> None:
    """Profiles out of the work folder into bench/results/."""
    suffix = "-quick" if quick else ""
    for key, figures in (
        ("repeat", (results.get("repeat") or {}).get("profiled")),
        ("volume", (results.get("volume") or {}).get("profiled")),
    ):
        source = (figures or {}).get("profile_file")
        if source and Path(source).is_file():
            target = RESULTS_DIR / f"poll-profile-{key}{suffix}.txt"
            shutil.copyfile(source, target)
            figures["profile_file"] = str(target.relative_to(REPO))


MAIN_STEPS = {  # step timer label -> what the table calls it (main-thread or per-article work)
    "flows.pipeline._store_batch": "_store_batch (a feed's pages in: classify, store)",
    "BatchClassifier.rows (classify in a worker)": "  BatchClassifier.rows (classify in a worker)",
    "flows.poll.classification_rows": "    classification_rows (send, classify, receive)",
    "flows.poll.store_feed_poll": "  store_feed_poll (clusters, insert, FTS)",
    "BatchClassifier.backlog": "BatchClassifier.backlog (articles left unclassified earlier)",
    "flows.poll.fetch_article": "fetch_article (page phase: span = its wall time)",
    "flows.poll.fingerprint": "fingerprint (MinHash, in page threads)",
    "flows.poll.parse_fetched": "parse_fetched (in a worker)",
    "flows.pipeline._finish_poll": "_finish_poll (summary artifact, runs row)",
    "Progress.advance (UI progress artifact)": "Progress.advance (progress artifact updates)",
    "Worker start (fork)": "worker process start (forked from the worker server)",
}


def print_table(results: dict[str, Any]) -> bool:
    rows: list[tuple[str, str, str]] = []
    ok = True
    repeat = results.get("repeat")
    if repeat:
        second = repeat["repeat_poll"]
        own = second["poll_own_seconds"]
        backlog = second["summary"].get("backlog_classified", 0)
        met = (
            own is not None
            and own < TARGETS["repeat_poll_own_seconds"]
            and repeat["repeat_page_fetches"] == 0
        )
        ok &= met
        rows += [
            (
                "a. repeat poll of unchanged feeds",
                f"{repeat['feeds']} feeds, {repeat['pages']} pages",
                "",
            ),
            ("   page fetches on the repeat poll", f"{repeat['repeat_page_fetches']}", "0"),
            (
                "   feed requests on the repeat poll",
                f"{repeat['repeat_feed_requests']} ({second['outcomes']})",
                "",
            ),
            (
                "   repeat poll, own time (flow run)",
                f"{own:.2f} s",
                f"< {TARGETS['repeat_poll_own_seconds']:.0f} s" + ("  ok" if met else "  MISSED"),
            ),
            ("   repeat poll, call wall time", f"{second['poll_call_seconds']:.2f} s", ""),
            (
                "   CPU: poll process / Prefect server",
                f"{second['cpu_seconds']['self']:.2f} s / "
                f"{second['cpu_seconds']['prefect_server']:.2f} s ({second['threads_peak']} threads at most)",
                "",
            ),
            ("   Prefect start-up, new database", _startup(repeat["first_poll"]), "separate"),
            ("   Prefect start-up, existing database", _startup(second), "separate"),
            (
                "   first poll (stores everything), call",
                f"{repeat['first_poll']['poll_call_seconds']:.1f} s",
                "",
            ),
        ]
        plain = (repeat.get("profiled") or {}).get("plain_steps")
        if plain:
            rows.append(
                (
                    "   the same work without Prefect (--profile)",
                    f"{plain['seconds']:.2f} s wall, "
                    f"{plain['cpu_seconds']:.2f} s CPU ({plain['unchanged']}/{plain['feeds']} unchanged)",
                    "",
                )
            )
        if backlog:
            rows.append(
                (
                    "   WARNING: backlog classified in the repeat",
                    f"{backlog} articles (the model appeared "
                    "between the polls): not a clean repeat",
                    "",
                )
            )
    volume = results.get("volume")
    if volume:
        poll, floor = volume["poll"], volume["floor"]
        ratio = poll["poll_call_seconds"] / floor["floor_seconds"]
        own_ratio = (poll["poll_own_seconds"] or 0) / floor["floor_seconds"]
        met = ratio <= TARGETS["ratio"]
        ok &= met
        memory, sampled = poll["memory"], poll.get("sampled_peaks", {})
        kb, cpu = volume["page_kb"], poll["cpu_seconds"]
        rows += [
            (
                "b. new articles from loopback",
                f"{volume['pages']} pages in {volume['feeds']} feeds, "
                f"{kb['min']:.0f}-{kb['max']:.0f} KB (median {kb['median']:.0f})",
                "",
            ),
            ("   whole poll, call wall time", f"{poll['poll_call_seconds']:.2f} s", ""),
            ("   whole poll, own time (flow run)", f"{poll['poll_own_seconds']:.2f} s", ""),
            (
                "   floor: httpx + trafilatura loop",
                f"{floor['floor_seconds']:.2f} s, {floor.get('floor_cpu_seconds', 0):.1f} s CPU "
                f"({floor['extracted']}/{floor['pages']} extracted)",
                "",
            ),
            (
                "   ratio poll / floor",
                f"{ratio:.2f} (own time: {own_ratio:.2f})"
                + (
                    "; the median of "
                    + ", ".join(f"{r['ratio']:.2f}" for r in volume["rounds"])
                    + " measured in turn"
                    if len(volume.get("rounds", [])) > 1
                    else ""
                ),
                f"<= {TARGETS['ratio']}" + ("  ok" if met else "  MISSED"),
            ),
            (
                "   CPU of the poll: process / workers",
                f"{cpu['self']:.1f} s / {cpu['children']:.1f} s "
                f"(+ Prefect server {cpu['prefect_server']:.1f} s; {poll['threads_peak']} threads at most)",
                "",
            ),
            (
                "   CPU of the whole machine during the poll",
                f"{cpu['machine']:.1f} s of {(os.cpu_count() or 1) * poll['poll_call_seconds']:.1f} s "
                f"({os.cpu_count()} cores x wall)"
                if "machine" in cpu
                else "not measured",
                "",
            ),
            (
                "   CPU of the local HTTP server",
                f"poll {poll.get('local_server_cpu_seconds', 0):.1f} s, "
                f"floor {floor.get('local_server_cpu_seconds', 0):.1f} s",
                "",
            ),
            ("   stored / extraction ok / classified", _stored(poll, volume.get("stored")), ""),
            ("   Prefect start-up (not in the poll)", _startup(poll), "separate"),
            (
                "   worker server start-up (not in the poll)",
                f"{poll.get('worker_server_start_cpu_seconds', 0):.1f} s CPU of imports, "
                "in a process of its own while Prefect starts",
                "separate",
            ),
            ("   Prefect's CPU per task run (empty tasks, apart)", _task_cost(poll), ""),
            (
                "c. peak RSS, poll process (RUSAGE_SELF)",
                f"{memory['self_peak_mb']:.0f} MB"
                + (
                    f" (own pages, VmHWM: {memory['self_vmhwm_mb']:.0f} MB)"
                    if "self_vmhwm_mb" in memory
                    else ""
                ),
                "",
            ),
            (
                "   poll process RSS: imported / ready / after",
                f"{poll.get('rss_after_import_mb', 0):.0f} / "
                f"{poll.get('rss_before_poll_mb', 0):.0f} / {poll.get('rss_after_poll_mb', 0):.0f} MB",
                "",
            ),
            (
                "   peak RSS, children (RUSAGE_CHILDREN)",
                f"{memory['children_peak_mb']:.0f} MB "
                "(largest finished child; on Linux at least the poll process's size when it spawned it)",
                "",
            ),
        ]
        if sampled:
            own_peaks = sampled["own_peaks_mb"]
            workers = own_peaks.get("worker", [])
            rows += [
                (
                    "   workers' own peaks (VmHWM, sampled)",
                    ", ".join(f"{w:.0f}" for w in workers)
                    + " MB, counting pages shared with the worker server"
                    if workers
                    else "none seen",
                    "",
                ),
                (
                    "   worker server (VmHWM)",
                    ", ".join(f"{w:.0f}" for w in own_peaks.get("worker_server", [])) + " MB",
                    "",
                ),
                (
                    "   peak of poll process + worker server + workers (PSS sum)",
                    f"{sampled['poll_plus_workers_mb']:.0f} MB",
                    "",
                ),
                (
                    "   Prefect's server process (VmHWM)",
                    ", ".join(f"{w:.0f}" for w in own_peaks.get("prefect_server", [])) + " MB",
                    "",
                ),
            ]
    width = max(len(r[0]) for r in rows) + 2
    value_width = max(len(r[1]) for r in rows) + 2
    print(
        f"\npoll benchmark{' (quick)' if results['quick'] else ''}: {results['cpus']} CPUs, "
        f"load average {results['load_average_before']} before, {results.get('load_average_after')} after; "
        f"local server TCP_NODELAY {results.get('server_tcp_nodelay')}"
    )
    print(f"classifier: {results['classifier']}")
    print(f"{'measure'.ljust(width)}{'value'.ljust(value_width)}target")
    for label, value, target in rows:
        print(f"{label.ljust(width)}{value.ljust(value_width)}{target}")
    for key, figures in (
        ("repeat poll", (repeat or {}).get("repeat_poll")),
        ("volume poll", (volume or {}).get("poll")),
    ):
        if figures and figures.get("steps"):
            print(
                f"\nwhere the {key}'s time goes (step timers; wall seconds, summed over threads where "
                "steps run in parallel):"
            )
            for label, name in MAIN_STEPS.items():
                step = figures["steps"].get(label)
                if step:
                    print(
                        f"  {name:<56}{step['seconds']:>8.2f} s {step['calls']:>6} calls, "
                        f"span {step.get('span', 0):.2f} s"
                        + (f" ({step['from']:.2f} to {step['to']:.2f} s)" if "from" in step else "")
                    )
    components = (volume or {}).get("components")
    if components:
        print(f"\nper-article cost, one thread, {components['pages']} pages (ms):")
        for label, value in components["ms_per_page"].items():
            print(f"  {label:<62}{value:>8.2f}")
        if "relevant_share" in components:
            print(f"  (relevant share of these pages: {components['relevant_share']:.0%})")
        if "classifier" in components:
            print(f"  classifier {components['classifier']}")
    what_ifs = [
        (
            "repeat poll",
            (repeat or {}).get("what_if") or {},
            (repeat or {}).get("repeat_poll"),
            None,
        ),
        (
            f"{(volume or {}).get('pages')}-article poll",
            (volume or {}).get("what_if") or {},
            (volume or {}).get("poll"),
            (volume or {}).get("floor"),
        ),
    ]
    for key, experiments, base, floor in what_ifs:
        if experiments and base:
            print(
                f"\nwhat if (--what-if, patched in the poll process only): {key}, own time "
                f"(measured: {base['poll_own_seconds']:.2f} s)"
            )
            for names, figures in experiments.items():
                ratio = (
                    f", ratio {figures['poll_call_seconds'] / floor['floor_seconds']:.2f}"
                    if floor
                    else ""
                )
                print(
                    f"  {names:<58}{figures['poll_own_seconds']:>7.2f} s (call {figures['poll_call_seconds']:.2f} s"
                    f"{ratio}; CPU {figures['cpu_seconds']['self']:.1f} + workers "
                    f"{figures['cpu_seconds']['children']:.1f} + Prefect server "
                    f"{figures['cpu_seconds']['prefect_server']:.1f} s)"
                )
                fallbacks = figures["summary"].get("fallbacks", 0)
                if fallbacks:
                    print(
                        f"    INVALID: {fallbacks} pages fell back to the feed summary (see the log)"
                    )
            for name in sorted({n for names in experiments for n in names.split(",")}):
                print(f"    {name}: {EXPERIMENTS[name]}")
    for key, figures in (
        ("repeat", (repeat or {}).get("profiled")),
        ("volume", (volume or {}).get("profiled")),
    ):
        if figures and figures.get("profile_file"):
            print(f"cProfile of a {key} poll (all threads): {figures['profile_file']}")
    print("\nall targets met" if ok else "\nTARGET MISSED")
    return ok


def _startup(figures: dict[str, Any]) -> str:
    return (
        f"{figures['import_seconds'] + figures['prefect_server_start_seconds']:.1f} s "
        f"(import {figures['import_seconds']:.1f} + server {figures['prefect_server_start_seconds']:.1f}; "
        f"an empty flow run then costs {figures['empty_flow_seconds']:.2f} s)"
    )


def _task_cost(figures: dict[str, Any]) -> str:
    cost = figures.get("prefect_task_cost")
    if not cost:
        return "not measured"
    each = cost["client_ms"] + cost["server_ms"]
    return (
        f"{each:.0f} ms ({cost['client_ms']:.0f} client + {cost['server_ms']:.0f} server); "
        f"the poll's {cost['tasks']} task runs: about {each * cost['tasks'] / 1000:.1f} s"
    )


def _stored(poll: dict[str, Any], stats: dict[str, Any] | None) -> str:
    summary = poll["summary"]
    if not stats:
        return f"{summary['stored']} stored" + (
            ", unclassified" if summary.get("model_problem") else ""
        )
    ok = stats["extraction"].get("ok", 0)
    return (
        f"{summary['stored']} / {ok} / {stats['classified']} ({summary['relevant']} relevant, "
        f"{stats['story_clusters']} story clusters)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
