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
    """Two workers: item 0 fails while item 1 runs. Item 1 finishes (it was running), and
    not one of the 48 items behind them starts."""
    started: list[int] = []
    one_running = threading.Event()
    stop = threading.Event()  # run_all's own: set at the first failure

    def work(n: int) -> int:
        started.append(n)
        if n == 0:
            assert one_running.wait(5), "item 1 never started beside item 0"
            raise ValueError("item 0 is bad")
        one_running.set()
        stop.wait(5)  # returns once the failure is known, so its worker looks for more
        return n

    with pytest.raises(ValueError, match="item 0 is bad"):
        run_all(work, list(range(50)), jobs=2, stop=stop)
    assert sorted(started) == [0, 1] and stop.is_set()


def test_empty_input() -> None:
    assert run_all(lambda n: n, [], jobs=16) == []
