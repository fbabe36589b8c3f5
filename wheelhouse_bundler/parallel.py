"""Many blocking calls at once, in threads that never hold up the process's exit.

concurrent.futures joins its workers when the interpreter exits, so a Ctrl-C while a
server stalls a transfer waited for the socket's timeout before the process could leave,
and the stalled file was still fetched. An operator's Ctrl-C must stop at once. These
workers are daemon threads sharing a `stop` event: it is set on an interrupt or on the
first failure, workers take no new item once it is set (and the fetch loop checks it
between chunks), and the process exits without waiting for a socket that does not answer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_all(fn: Callable[[T], R], items: Sequence[T], jobs: int,
            stop: threading.Event | None = None) -> list[R]:
    """`[fn(x) for x in items]`, `jobs` at a time; the first exception wins and is raised.

    After a failure, items not yet started are skipped and those running finish (their
    own errors are dropped). An interrupt in the caller sets `stop` and propagates at once.
    """
    stop = stop if stop is not None else threading.Event()
    results: list[R | None] = [None] * len(items)
    errors: list[BaseException] = []
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(items)):
        todo.put(i)

    def work() -> None:
        while not stop.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[i] = fn(items[i])
            except BaseException as exc:  # handed to the caller, with everything else
                errors.append(exc)
                stop.set()

    workers = [threading.Thread(target=work, daemon=True, name=f"wheelhouse-worker-{n}")
               for n in range(max(1, min(jobs, len(items))))]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    except BaseException:
        stop.set()
        raise
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]  # every slot is filled when no error


def in_background(fn: Callable[[], None]) -> Callable[[], None]:
    """Start `fn` on a daemon thread; the function returned waits for it, raising its error.

    For side work (bookkeeping writes) that may run beside the transfers instead of
    before or after them.
    """
    failed: list[BaseException] = []

    def work() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to whoever waits
            failed.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if failed:
            raise failed[0]

    return wait
