"""Worker processes: a hang is killed at the wall-clock limit and the pool keeps working."""

import threading
import time

import pytest

from flows.workers import WorkerPool, WorkFailed


def explode(message: str) -> None:
    raise ValueError(message)


def hog_memory() -> int:
    return len(bytearray(4 * 1024**3))


def test_timeout_kills_and_the_pool_recovers():
    with WorkerPool(1, timeout=1) as pool:
        started = time.monotonic()
        with pytest.raises(WorkFailed) as caught:
            pool.run(time.sleep, 30)
        assert caught.value.kind == "timeout" and time.monotonic() - started < 10
        assert pool.run(len, "still alive") == 11


def test_errors_come_back_as_data():
    with WorkerPool(1, timeout=10) as pool:
        with pytest.raises(WorkFailed, match="ValueError: boom"):
            pool.run(explode, "boom")
        assert pool.run(sum, [1, 2]) == 3


def test_memory_blow_up_is_stopped():
    with WorkerPool(1, timeout=20, memory_limit=1024**3) as pool:
        with pytest.raises(WorkFailed) as caught:
            pool.run(hog_memory)
        assert caught.value.kind in ("memory", "crash")
        assert pool.run(len, "ok") == 2


def test_an_urgent_call_takes_the_next_free_worker_ahead_of_waiting_calls():
    finished: list[str] = []

    def call(pool: WorkerPool, name: str, seconds: float, urgent: bool = False) -> None:
        pool.run(time.sleep, seconds, urgent=urgent)
        finished.append(name)

    with WorkerPool(1, timeout=20) as pool:
        pool.run(len, "start the one worker")
        busy = threading.Thread(target=call, args=(pool, "busy", 2.0))
        busy.start()
        time.sleep(0.3)
        waiting = [threading.Thread(target=call, args=(pool, f"page {i}", 0.0)) for i in range(3)]
        for thread in waiting:
            thread.start()
        time.sleep(0.3)
        urgent = threading.Thread(target=call, args=(pool, "feed", 0.0, True))
        urgent.start()
        for thread in (busy, *waiting, urgent):
            thread.join()
    assert finished[:2] == ["busy", "feed"]
    assert sorted(finished[2:]) == ["page 0", "page 1", "page 2"]


def test_waiting_calls_are_served_by_order_then_by_arrival():
    finished: list[str] = []

    def call(pool: WorkerPool, name: str, order: int) -> None:
        pool.run(time.sleep, 0.0, order=order)
        finished.append(name)

    def wait_until_queued(pool: WorkerPool, count: int) -> None:
        # Arrival order is part of what is tested: each call is queued before the next starts.
        deadline = time.monotonic() + 10
        while len(pool._waiting) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    with WorkerPool(1, timeout=20) as pool:
        pool.run(len, "start the one worker")
        busy = threading.Thread(target=pool.run, args=(time.sleep, 2.0))
        busy.start()
        while pool._idle:  # until the busy call holds the one worker
            time.sleep(0.01)
        calls = [("late a", 2), ("early a", 1), ("late b", 2), ("early b", 1), ("first", 0)]
        waiting = []
        for queued, (name, order) in enumerate(calls, start=1):
            waiting.append(threading.Thread(target=call, args=(pool, name, order)))
            waiting[-1].start()
            wait_until_queued(pool, queued)
        assert len(pool._waiting) == len(calls), "the busy call ended before all were queued"
        for thread in (busy, *waiting):
            thread.join()
    assert finished == ["first", "early a", "early b", "late a", "late b"]
