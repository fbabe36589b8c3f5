"""run_all: results in input order, the first error raised, nothing new started after it."""

from __future__ import annotations

import threading
import time

import pytest

from wheelhouse_bundler.parallel import run_all


def test_results_keep_the_input_order() -> None:
    def slow_square(n: int) -> int:
        time.sleep(0.001 * (10 - n))  # later items finish first
        return n * n

    assert run_all(slow_square, list(range(10)), jobs=4) == [n * n for n in range(10)]


def test_first_error_is_raised_and_later_items_never_start() -> None:
    started: list[int] = []
    failed = threading.Event()

    def work(n: int) -> int:
        started.append(n)
        if n == 0:
            failed.set()
            raise ValueError("item 0 is bad")
        failed.wait(1)
        return n

    with pytest.raises(ValueError, match="item 0 is bad"):
        run_all(work, list(range(50)), jobs=2)
    assert len(started) < 50


def test_empty_input() -> None:
    assert run_all(lambda n: n, [], jobs=16) == []
