"""Worker processes for parsing, extraction and classification: a hang or a memory blow-up is
killed, not waited on.

Neither feedparser, trafilatura nor the classifier can be interrupted from a thread, so each call
runs in a child process with a wall-clock limit; a child that overruns is killed and replaced.
Workers are forked from a server process that has imported all three (and loaded the language
identifier) once: a worker then starts in milliseconds, where importing them costs each new
process some 3 s of CPU. `start_worker_server()` starts that server ahead of the first poll.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import multiprocessing
import os
import resource
import threading
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

MEMORY_LIMIT_BYTES = 2 * 1024**3
PRELOAD = ["flows.worker_preload"]


def _context() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_worker_server(environment: Mapping[str, str] | None = None) -> None:
    """Start the process workers are forked from, without waiting for its imports, with
    `environment` added to this process's for it to read (no effect once it runs). Commands
    that poll call it first, so the imports happen while Prefect's server starts; a served
    deployment runs each poll in a new process, where the poll flow starts it."""
    from multiprocessing import forkserver

    os.environ.update(environment or {})
    _context()
    forkserver.ensure_running()


class WorkFailed(Exception):
    """The call ran out of time, ran out of memory, or raised; `kind` says which."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def _serve(conn: Connection, memory_limit: int) -> None:
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    while True:
        try:
            job = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if job is None:
            return
        function, args, kwargs = job
        try:
            conn.send(("ok", function(*args, **kwargs)))
        except MemoryError:
            conn.send(("memory", "ran out of memory"))
        except Exception as error:  # the error travels back as data: it may not pickle
            conn.send(
                (
                    "error",
                    (
                        type(error).__name__,
                        str(error),
                        getattr(error, "kind", None),
                        traceback.format_exc(limit=3),
                    ),
                )
            )


class Worker:
    def __init__(self, memory_limit: int):
        self._memory_limit = memory_limit
        self._context = _context()
        self._start()

    def _start(self) -> None:
        self._conn, child = self._context.Pipe()
        self._process = self._context.Process(
            target=_serve, args=(child, self._memory_limit), daemon=True
        )
        self._process.start()
        child.close()

    def _restart(self) -> None:
        self._process.kill()
        self._process.join(5)
        self._conn.close()
        self._start()

    def call(self, function: Callable[..., Any], args: tuple, kwargs: dict, timeout: float) -> Any:
        try:
            self._conn.send((function, args, kwargs))
            ready = self._conn.poll(timeout)
            if not ready:
                self._restart()
                raise WorkFailed("timeout", f"took longer than {timeout:.0f} s and was stopped")
            status, value = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as error:
            self._restart()
            raise WorkFailed(
                "crash", f"the worker process died ({type(error).__name__})"
            ) from error
        if status == "ok":
            return value
        if status == "memory":
            self._restart()
            raise WorkFailed("memory", value)
        name, message, kind, _trace = value
        raise WorkFailed(kind or "error", f"{name}: {message}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(2)
        if self._process.is_alive():
            self._process.kill()
        self._conn.close()


class _Handoff:
    """A waiting call's place in the queue. It is given a worker, or None: the place of a
    worker that failed to start, which the call then tries to start itself."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._worker: Worker | None = None

    def give(self, worker: Worker | None) -> None:
        self._worker = worker
        self._ready.set()

    def wait(self) -> Worker | None:
        self._ready.wait()
        return self._worker


class WorkerPool:
    """A fixed set of workers shared by threads; each call borrows one worker. Waiting calls
    get a free worker urgent ones first (a feed to parse or a batch to classify, which unblock
    whole batches of pages), then by `order` (lowest first), then in order of arrival. A poll
    gives each feed's pages its feed's place as `order`, so feeds finish one after another and
    each is classified and stored while the next one's pages are extracted, instead of all
    finishing together at the end. A returned worker is handed straight to the next waiting
    call: with dozens of page threads waiting, waking them all on every return cost the poll
    a second of CPU per thousand pages."""

    def __init__(
        self, size: int = 2, timeout: float = 30.0, memory_limit: int = MEMORY_LIMIT_BYTES
    ):
        self.timeout = timeout
        self._size = max(1, size)
        self._memory_limit = memory_limit
        self._idle: list[Worker] = []
        self._started = 0
        self._waiting: list[tuple[bool, int, int, _Handoff]] = []  # a heap
        self._arrivals = itertools.count()
        self._lock = threading.Lock()
        start_worker_server()  # now, in case the command that runs this pool did not

    def _borrow(self, urgent: bool, order: int) -> Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            handoff = None
            if self._started < self._size:
                self._started += 1
            else:
                handoff = _Handoff()
                place = (not urgent, order, next(self._arrivals), handoff)
                heapq.heappush(self._waiting, place)
        worker = handoff.wait() if handoff else None
        if worker is not None:
            return worker
        try:
            return Worker(self._memory_limit)
        except BaseException:
            self._release(None)
            raise

    def _release(self, worker: Worker | None) -> None:
        """Hand `worker` (None: the place of a worker that failed to start) to the next
        waiting call, else keep it idle (or give the place up)."""
        with self._lock:
            if not self._waiting:
                if worker is None:
                    self._started -= 1
                else:
                    self._idle.append(worker)
                return
            *_, handoff = heapq.heappop(self._waiting)
        handoff.give(worker)

    def run(
        self,
        function: Callable[..., Any],
        *args: Any,
        timeout: float | None = None,
        urgent: bool = False,
        order: int = 0,
        **kwargs: Any,
    ) -> Any:
        worker = self._borrow(urgent, order)
        try:
            return worker.call(function, args, kwargs, timeout or self.timeout)
        finally:
            self._release(worker)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
