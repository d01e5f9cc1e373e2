"""How long the model's jobs take, so that a writer whose job must wait is told about how long.

The model serves one job at a time (composer.model.serialized); a compose or a model edit that
arrives while another writer's runs waits in the queue. The clock keeps, for each kind of job
("compose", "edit"), how long the last few took on this server, and which jobs are running or
announced (a writer clicked, the job has not started yet). The wait for a new job is what the
running ones have left plus what the announced ones will take, from those durations; before a
kind has run once, a first guess stands in for it.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["JobClock", "Timing"]

FIRST_GUESS_S = {"compose": 60.0, "edit": 15.0}
KEPT = 5  # durations kept per kind: recent enough to follow a slower model or a busier server
MIN_LEFT_S = 5.0  # a job past its typical time still has a little left
ANNOUNCED_FOR_S = 600.0  # a click whose job never started (its tab closed) stops counting after this


class JobClock:
    def __init__(self, first_guess: dict[str, float] | None = None, clock=time.monotonic):
        self._guess = dict(FIRST_GUESS_S if first_guess is None else first_guess)
        self._clock = clock
        self._lock = threading.Lock()
        self._took: dict[str, deque[float]] = {}
        self._running: dict[object, tuple[str, float]] = {}
        self._announced: dict[str, tuple[str, float]] = {}

    def typical(self, kind: str) -> float:
        with self._lock:
            return self._typical(kind)

    def _typical(self, kind: str) -> float:
        took = self._took.get(kind)
        return statistics.median(took) if took else self._guess.get(kind, max(self._guess.values(), default=30.0))

    def announce(self, who: str, kind: str) -> float | None:
        """A writer asked for a job: the seconds it will likely wait (None: it need not wait)."""
        with self._lock:
            wait = self._wait(exclude=who)
            self._announced[who] = (kind, self._clock())
            return wait

    def _wait(self, exclude: str) -> float | None:
        now = self._clock()
        for key, (_, at) in list(self._announced.items()):
            if now - at > ANNOUNCED_FOR_S:
                del self._announced[key]
        left = [max(self._typical(kind) - (now - start), MIN_LEFT_S) for kind, start in self._running.values()]
        left += [self._typical(kind) for key, (kind, _) in self._announced.items() if key != exclude]
        return sum(left) if left else None

    @contextmanager
    def job(self, who: str, kind: str) -> Iterator[Timing]:
        """Time one job of `kind` for writer `who`. A job that ends by an error, a Stop or a closed
        tab is no measure of how long such jobs take: only one that ran to its end, and was not
        marked `keep = False`, is kept."""
        token, timing = object(), Timing()
        with self._lock:
            self._announced.pop(who, None)
            self._running[token] = (kind, self._clock())
        finished = False
        try:
            yield timing
            finished = True
        finally:
            with self._lock:
                _, start = self._running.pop(token)
                if finished and timing.keep:
                    self._took.setdefault(kind, deque(maxlen=KEPT)).append(self._clock() - start)


class Timing:
    """One job being timed; `keep = False` when it ended early (stopped, failed)."""

    keep = True
