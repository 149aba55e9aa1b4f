"""All benchmarks: ``python -m bench [--quick]`` (``make bench``).

Each benchmark runs in a process of its own (their peak-memory figures come from getrusage, which
only ever grows): bench/bench_poll.py, then bench/bench_classify.py when it is there. Their tables
are printed as they come; a summary of every figure follows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def run(label: str, command: list[str]) -> tuple[int, float]:
    print(f"\n=== {label}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    code = subprocess.call(command, cwd=REPO)
    return code, time.perf_counter() - started


def poll_figures(quick: bool) -> list[str]:
    path = BENCH / "results" / ("poll-quick.json" if quick else "poll.json")
    if not path.is_file():
        return []
    results = json.loads(path.read_text("utf-8"))
    lines = []
    repeat = results.get("repeat")
    if repeat:
        second = repeat["repeat_poll"]
        start = second["import_seconds"] + second["prefect_server_start_seconds"]
        lines.append(
            f"repeat poll of {repeat['feeds']} unchanged feeds: {second['poll_own_seconds']:.2f} s own "
            f"({second['poll_call_seconds']:.2f} s call), {repeat['repeat_page_fetches']} page fetches; "
            f"Prefect start-up {start:.1f} s"
        )
    volume = results.get("volume")
    if volume:
        poll, floor = volume["poll"], volume["floor"]
        memory = poll["memory"]
        lines.append(
            f"{volume['pages']} new articles: poll {poll['poll_call_seconds']:.2f} s, floor "
            f"{floor['floor_seconds']:.2f} s, ratio {poll['poll_call_seconds'] / floor['floor_seconds']:.2f}"
        )
        workers = poll.get("sampled_peaks", {}).get("own_peaks_mb", {}).get("worker", [])
        lines.append(
            f"peak RSS of that poll: {memory['self_peak_mb']:.0f} MB (RUSAGE_SELF), "
            f"{memory['children_peak_mb']:.0f} MB (RUSAGE_CHILDREN, inherits the poll process's size "
            f"at spawn); workers' own peaks {', '.join(f'{w:.0f}' for w in workers) or '?'} MB"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="run atlaswatch's benchmarks"
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    args = parser.parse_args(argv)

    outcomes: list[tuple[str, int, float]] = []
    poll_command = [
        sys.executable,
        str(BENCH / "bench_poll.py"),
        *(["--quick"] if args.quick else []),
    ]
    outcomes.append(("poll", *run("poll", poll_command)))
    classify = BENCH / "bench_classify.py"
    if classify.is_file():
        command = [sys.executable, str(classify), *(["--pieces", "2000"] if args.quick else [])]
        outcomes.append(("classify", *run("classify", command)))
    else:
        print("\n=== classify: bench/bench_classify.py is not there, skipped")

    print("\n=== summary")
    for line in poll_figures(args.quick):
        print(f"  {line}")
    for name, code, seconds in outcomes:
        verdict = (
            "targets met" if code == 0 else f"exit code {code} (target missed or error; see above)"
        )
        print(f"  {name}: {verdict}, {seconds:.0f} s")
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
