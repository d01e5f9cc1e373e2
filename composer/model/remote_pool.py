"""Several servers behind one model: spread requests, notice the ones that are down, retry.

A request goes to the healthy server with the fewest requests in flight (ties: the one picked
least recently, so a lone writer's requests alternate too). A server that refuses a connection
or answers 5xx is marked down for a back-off period that doubles with each failure in a row
(with jitter, so that clients do not return in step) and the request moves to another server;
when every server is down, the request waits for the first to come back, within a bounded
number of tries and total time. 429 (busy) is waited out the same way, honouring Retry-After.
Other 4xx are the request's fault and are not retried. This module only opens responses:
whether a reply may still be retried once it is being read is the caller's business (never
after the first streamed token has reached the writer).
"""
from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from composer.model.base import ModelError
from composer.model.remote_http import Silent, Status, Unreachable, as_text, open_request

BUSY = 429
API_KEY_VARIABLES = ("COMPOSER_API_KEY", "OPENAI_API_KEY")  # the app's own first
MAX_REPLY_BYTES = 16 << 20  # a whole non-streamed reply (a model list, choose's logprobs)
RETRIED_STATUS = {BUSY, 502, 503, 504}  # the server or its proxy is overloaded or restarting


def api_key_from_env() -> str | None:
    """The key every client of these servers sends (chat and image engines alike)."""
    return next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), None)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5        # tries per request, all servers together
    total_s: float = 30.0    # no new try starts (or is waited for) after this long
    base_s: float = 0.25     # first back-off; doubles with each failure in a row
    cap_s: float = 8.0       # longest back-off (and longest Retry-After honoured)

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Exponential with 'equal jitter': half fixed, half random."""
        d = min(self.cap_s, self.base_s * 2 ** max(0, failures - 1))
        return d / 2 + rng.uniform(0, d / 2)


@dataclass
class Server:
    base: str
    outstanding: int = 0
    failures: int = 0          # in a row; 0 once it answers
    down_until: float = 0.0    # clock time; healthy when in the past
    last_error: str = ""
    last_pick: int = 0
    served: int = 0            # responses opened (for a status line and the benchmark)


@dataclass
class Lease:
    """An open response from one server; `close()` once, whatever happened."""

    pool: ServerPool
    server: Server
    response: http.client.HTTPResponse
    closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.response.close()
            finally:
                self.pool._release(self.server)


class ServerPool:
    def __init__(self, urls: Sequence[str], policy: RetryPolicy = RetryPolicy(), api_key: str | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 seed: int | None = None):
        if not urls:
            raise ValueError("a server pool needs at least one URL")
        self.servers = [Server(u) for u in urls]
        self.policy = policy
        self.api_key = api_key
        self._clock, self._sleep = clock, sleep
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._picks = 0

    @property
    def urls(self) -> list[str]:
        return [s.base for s in self.servers]

    def open(self, method: str, path: str, body: dict | None, timeout: float, first: bool = False) -> Lease:
        """Open a response from some server. `first`: the first healthy server in the order
        given rather than the least busy (for /v1/models, so that the spec's order decides)."""
        start = self._clock()
        failed_500: set[str] = set()  # a 500 may be this request's doing: not the same server twice
        tries = 0
        while True:
            server = self._acquire(start, tries, failed_500, first)
            tries += 1
            try:
                response = open_request(server.base, method, path, body, timeout, self.api_key)
            except Unreachable as exc:
                self._failed(server, str(exc))
            except Status as exc:
                if exc.code < 500 and exc.code != BUSY:
                    self._release(server, answered=True)
                    raise ModelError(f"the server at {server.base} answered {exc}") from None
                self._failed(server, str(exc), exc.retry_after if exc.code == BUSY else None)
                if exc.code not in RETRIED_STATUS:
                    failed_500.add(server.base)
            except Silent:
                # Not retried (the writer has waited long enough), but a hung server is kept
                # away from the other writers for its back-off.
                self._failed(server, f"no answer within {timeout:g} s")
                raise ModelError(f"the server at {server.base} did not answer within {timeout:g} s") from None
            except BaseException:
                self._release(server)
                raise
            else:
                with self._lock:
                    server.failures, server.down_until = 0, 0.0
                    server.served += 1
                return Lease(self, server, response)

    def request_json(self, method: str, path: str, body: dict | None, timeout: float, first: bool = False,
                     max_bytes: int = MAX_REPLY_BYTES) -> dict:
        """A whole JSON object from some server (retried as `open` retries; once a reply is being
        read, a failure is the caller's ModelError, not retried: the server did the work)."""
        lease = self.open(method, path, body, timeout, first=first)
        base = lease.server.base
        try:
            raw = lease.response.read(max_bytes + 1)
        except TimeoutError:
            raise ModelError(f"the server at {base} did not answer within {timeout:g} s") from None
        except (ConnectionError, http.client.HTTPException, OSError):
            raise ModelError(f"the server at {base} stopped answering mid-reply") from None
        finally:
            lease.close()
        if len(raw) > max_bytes:
            raise ModelError(f"the server at {base} sent a reply longer than {max_bytes >> 20} MiB")
        try:
            reply = as_text(json.loads(raw))
        except (ValueError, RecursionError):
            raise ModelError(f"the server at {base} sent something that is not JSON: {raw[:80]!r}") from None
        if not isinstance(reply, dict):
            raise ModelError(f"the server at {base} sent something that is not a JSON object: {raw[:80]!r}")
        return reply

    # --- choosing a server ------------------------------------------------------------------
    def _acquire(self, start: float, tries: int, excluded: set[str], first: bool) -> Server:
        while True:
            with self._lock:
                now = self._clock()
                usable = [s for s in self.servers if s.base not in excluded]
                healthy = [s for s in usable if s.down_until <= now]
                if healthy and tries < self.policy.attempts:
                    server = healthy[0] if first else min(healthy, key=lambda s: (s.outstanding, s.last_pick))
                    self._picks += 1
                    server.outstanding += 1
                    server.last_pick = self._picks
                    return server
                wait = min((s.down_until for s in usable), default=now) - now
            if not usable or tries >= self.policy.attempts or now - start + wait > self.policy.total_s:
                raise self._all_down(tries, now - start)
            self._sleep(max(wait, 0.0))

    def _failed(self, server: Server, error: str, retry_after: float | None = None) -> None:
        with self._lock:
            server.outstanding -= 1
        self.mark_down(server, error, retry_after)

    def mark_down(self, server: Server, error: str, retry_after: float | None = None) -> None:
        """Take a server out of rotation for its back-off period (also for the caller, when a
        reply it opened broke off before its first token)."""
        with self._lock:
            server.failures += 1
            server.last_error = error
            pause = self.policy.backoff(server.failures, self._rng)
            if retry_after is not None:
                pause = min(max(pause, retry_after), self.policy.cap_s)
            server.down_until = self._clock() + pause

    def _release(self, server: Server, answered: bool = False) -> None:
        with self._lock:
            server.outstanding -= 1
            if answered:
                server.failures, server.down_until = 0, 0.0

    def _all_down(self, tries: int, elapsed: float) -> ModelError:
        tried = f"{tries} {'try' if tries == 1 else 'tries'} in {elapsed:.1f} s"
        listing = "; ".join(f"{s.base} ({s.last_error or 'not tried'})" for s in self.servers)
        return ModelError(f"no server is available ({tried}): {listing}")

    def health(self) -> list[dict[str, object]]:
        """For a status line or a log: each server, in flight, down or not and why."""
        now = self._clock()
        with self._lock:
            return [{"url": s.base, "outstanding": s.outstanding, "served": s.served,
                     "down_for_s": max(0.0, s.down_until - now), "last_error": s.last_error} for s in self.servers]
