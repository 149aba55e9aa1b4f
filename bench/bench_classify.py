"""Classifier benchmark: throughput on one core, model load time, peak memory.

    python bench/bench_classify.py [--model PATH] [--pieces 10000] [--batch 500]

Pieces are 2,000-character cuts of the bundled corpus's texts (all four languages, relevant
and not), so the work per piece is what a real poll brings. Run it on its own: it pins
BLAS and OpenMP to one thread before NumPy is imported, and reads peak resident memory
from getrusage, which only ever grows.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, as the target says; must precede numpy's import

import argparse  # noqa: E402
import gc  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PIECE_CHARS = 2_000
WARM_UP = 500
TARGETS = {"pieces_per_second": 500.0, "load_seconds": 1.0, "peak_rss_mb": 300.0}


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def corpus_stream() -> str:
    """All corpus texts end to end: the material the pieces are cut from (read line by line,
    so the parsed corpus never sits in memory and the figure is the classifier's)."""
    import json

    from classifiers.training import corpus_files

    texts = []
    for path in corpus_files():
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                example = json.loads(line)
                if example["text"]:
                    texts.append(f"{example['title']}\n{example['text']}")
    return "\n\n".join(texts)


def pieces(stream: str, start: int, count: int) -> list[dict[str, str]]:
    """Pieces ``start`` to ``start + count``: each a different 2,000-character cut (the
    offsets step by a prime, so after one pass over the corpus the cuts shift), made as
    needed so the input's own size stays out of the memory figure."""
    span = len(stream) - PIECE_CHARS
    return [
        {"text": stream[(i * 1_999) % span : (i * 1_999) % span + PIECE_CHARS]}
        for i in range(start, start + count)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="atlaswatch classifier benchmark")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: bundled)")
    parser.add_argument("--pieces", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)

    from classifiers import detect_language, load_model

    started = time.perf_counter()
    clf = load_model(args.model)
    load_seconds = time.perf_counter() - started

    stream = corpus_stream()
    gc.collect()
    rss_before = peak_rss_mb()
    # Warm-up, not timed: the first call loads the language identifier, and the per-word
    # caches (normalised forms, cue classes, character n-grams) fill as a running pipeline's
    # would. The timed pieces are different cuts from the warm-up's.
    detect_language("Loading the language identifier before the timed run.")
    clf.classify(pieces(stream, args.pieces, WARM_UP))
    started, cpu_started = time.perf_counter(), time.process_time()
    relevant = 0
    for i in range(0, args.pieces, args.batch):
        batch = pieces(stream, i, min(args.batch, args.pieces - i))
        relevant += sum(r["relevant"] for r in clf.classify(batch))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    figures = {
        "pieces_per_second": args.pieces / elapsed,
        "load_seconds": load_seconds,
        "peak_rss_mb": peak_rss_mb(),
    }
    print(
        f"model {clf.version}: {args.pieces} pieces of {PIECE_CHARS} chars in batches of "
        f"{args.batch}, {relevant} tagged relevant"
    )
    print(
        f"  classify: {figures['pieces_per_second']:.0f} pieces/s on one core "
        f"({elapsed:.1f} s wall; target >= {TARGETS['pieces_per_second']:.0f}); "
        f"{args.pieces / cpu:.0f} pieces per CPU-second (what a busy machine cannot hide)"
    )
    print(f"  load:     {load_seconds:.2f} s (target < {TARGETS['load_seconds']:.0f} s)")
    print(
        f"  peak RSS: {figures['peak_rss_mb']:.0f} MB while classifying "
        f"({rss_before:.0f} MB before; target < {TARGETS['peak_rss_mb']:.0f} MB)"
    )
    ok = (
        figures["pieces_per_second"] >= TARGETS["pieces_per_second"]
        and load_seconds < TARGETS["load_seconds"]
        and figures["peak_rss_mb"] < TARGETS["peak_rss_mb"]
    )
    print("  all targets met" if ok else "  TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
