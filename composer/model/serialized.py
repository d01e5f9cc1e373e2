"""One model, many writers: a single owner thread runs the model and requests reach it through
a queue, so concurrent sessions never interleave inside a backend (a llama.cpp context or a KV
cache is one mutable thing).

Why an owner thread and not a lock: a web framework (Gradio) resumes a generator on whichever
worker thread is free and closes abandoned generators from yet another thread. A thread-bound
lock held across `yield` is then released by a thread that does not own it ("cannot release
un-acquired lock") and stays held forever. Here no lock is ever held across a `yield`: the
owner thread produces tokens into a small per-request buffer and the reader takes them from any
thread it likes.

How a request ends early, each freeing the model at the next token:
- the reader closes the stream (`TokenStream.close()` / `cancel()`, from any thread), or drops
  it: the stream is cancelled when it is garbage-collected, which for a generator that Gradio
  closes (the planner's `for delta in model.stream(...)`) happens at once;
- the caller's `stop` event is set (a Stop button): the reader gets `Cancelled`;
- the reader stops reading: once the buffer is full and no token has been taken for
  `idle_timeout` seconds, the owner drops the request and serves the next one; a reader that
  comes back gets the tokens already buffered, then `StreamAbandoned`.

`busy` / `wait_idle()` tell whether a request is queued or running (e.g. to pause library sync).
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Generator, Sequence
from typing import Any

from composer.model.base import ChatModel, ChatModelBase, ModelError, Prompt, Sampling

DEFAULT_IDLE_TIMEOUT = 30.0  # seconds a full buffer may wait for its reader before the model moves on
THREAD_SAFE_WORKERS = 8  # calls a thread-safe model (servers that queue and batch) is given at once
DEFAULT_BUFFER = 256  # tokens produced ahead of the reader; bounded so an idle reader costs little
_STOP_POLL = 0.05  # a threading.Event cannot wake a Condition: waits that watch one poll it this often


class Cancelled(ModelError):
    """The request was stopped by its `stop` event before the model finished it."""


class StreamAbandoned(ModelError):
    """The reader took no token for `idle_timeout` seconds, so the model was given to others."""


class _Request:
    """One request's state, shared by the owner thread and the caller. The owner holds only
    this, never the caller's TokenStream, so that a dropped stream can be collected."""

    def __init__(self, work: Callable[[], Any] | None, prompt: Prompt | None = None,
                 sampling: Sampling | None = None, stop: threading.Event | None = None):
        self.work, self.prompt, self.sampling, self.stop = work, prompt, sampling, stop
        # Reentrant because a garbage collection on the owner thread, while it holds this lock,
        # may finalise this request's stream, whose cancel() takes the lock again.
        self.cond = threading.Condition(threading.RLock())
        self.items: deque[str] = deque()
        self.done = self.cancelled = self.stopped = self.abandoned = False
        self.error: BaseException | None = None
        self.result: Any = None
        self.last_take = time.monotonic()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()

    def should_stop(self) -> bool:
        return self.cancelled or (self.stop is not None and self.stop.is_set())

    def finish(self, *, error: BaseException | None = None, result: Any = None) -> None:
        with self.cond:
            self.done, self.error, self.result = True, error, result
            if not self.cancelled and self.stop is not None and self.stop.is_set():
                self.stopped = True
            self.cond.notify_all()

    def wait_for(self, ready: Callable[[], bool]) -> None:
        """Wait (holding self.cond) until `ready()` or the caller's stop event is set."""
        # The stop event is looked at first, so that Stop is not delayed by a full buffer.
        while True:
            if self.stop is not None and self.stop.is_set():
                self.cancelled = self.stopped = True
                self.cond.notify_all()
                return
            if ready():
                return
            self.cond.wait(_STOP_POLL if self.stop is not None else None)


class _Owner:
    """The thread(s) that own the model: one for a model that is one mutable thing, several for
    a thread-safe one (a pool of servers), all taking requests from one queue. It holds no
    reference to the SerializedModel, which stops it (a None per thread) when closed or collected."""

    def __init__(self, model: ChatModel, idle_timeout: float, buffer: int, workers: int = 1):
        self.model, self.idle_timeout, self.buffer, self.workers = model, idle_timeout, buffer, workers
        self.jobs: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self.idle = threading.Event()
        self.idle.set()
        self._pending = 0
        self._count_lock = threading.Lock()
        self.closed = False
        self.threads = [threading.Thread(target=self._serve, name=f"model-owner:{model.name}", daemon=True)
                        for _ in range(workers)]
        for thread in self.threads:
            thread.start()

    def submit(self, req: _Request) -> None:
        with self._count_lock:
            if self.closed:  # nobody would ever serve it: fail now rather than wait forever
                raise ModelError(f"{self.model.name} was closed")
            self._pending += 1
            self.idle.clear()
        self.jobs.put(req)

    def stop(self) -> None:
        """Serve what is queued, then end the thread."""
        with self._count_lock:
            self.closed = True
        for _ in self.threads:
            self.jobs.put(None)

    def _served(self) -> None:
        with self._count_lock:
            self._pending -= 1
            if self._pending == 0:
                self.idle.set()

    def _serve(self) -> None:
        while (req := self.jobs.get()) is not None:
            try:
                if req.should_stop():
                    req.finish()
                elif req.work is not None:
                    req.finish(result=req.work())
                else:
                    self._stream(req)
                    req.finish()
            except BaseException as exc:  # the caller gets it unchanged; the owner serves on
                req.finish(error=exc)
            finally:
                del req  # hold nothing of a served request while waiting for the next
                self._served()

    def _stream(self, req: _Request) -> None:
        req.last_take = time.monotonic()  # the reader's idle clock starts when its turn comes
        assert req.prompt is not None and req.sampling is not None  # a request without work streams
        # `yield from` passes close() on to the model's own generator, on this thread.
        with contextlib.closing(_tokens(self.model, req.prompt, req.sampling)) as tokens:
            for token in tokens:
                if not self._offer(req, token):
                    return

    def _offer(self, req: _Request, token: str) -> bool:
        """Buffer one token for the reader; False when the request should stop."""
        with req.cond:
            while len(req.items) >= self.buffer and not req.should_stop():
                left = req.last_take + self.idle_timeout - time.monotonic()
                if left <= 0:
                    req.abandoned = True
                    return False
                req.cond.wait(min(left, _STOP_POLL) if req.stop is not None else left)
            if req.should_stop():
                return False
            req.items.append(token)
            req.cond.notify_all()
            return True


def _tokens(model: ChatModel, prompt: Prompt, sampling: Sampling) -> Generator[str, None, None]:
    yield from model.stream(prompt, sampling)


class TokenStream:
    """The reader's side of one streamed answer: an iterator of text deltas that any thread may
    advance or close. The request is queued on the first `next()`, as a generator would start."""

    def __init__(self, owner: _Owner, prompt: Prompt, sampling: Sampling, stop: threading.Event | None):
        self._owner = owner
        self._req = _Request(None, prompt, sampling, stop)
        self._submitted = self._closed = False

    def __iter__(self) -> TokenStream:
        return self

    def __next__(self) -> str:
        req = self._req
        if self._closed:
            raise StopIteration
        if not self._submitted:
            self._submitted = True
            self._owner.submit(req)
        with req.cond:
            req.wait_for(lambda: bool(req.items) or req.done or req.cancelled)
            if req.items:
                req.last_take = time.monotonic()
                req.cond.notify_all()
                return req.items.popleft()
            self._closed = True
            if req.stopped:
                raise Cancelled("stopped before the model finished")
            if req.cancelled:
                raise StopIteration
            if req.error is not None:
                raise req.error
            if req.abandoned:
                raise StreamAbandoned(f"the model moved on: this answer was not read for "
                                      f"{self._owner.idle_timeout:g} s")
            raise StopIteration

    def cancel(self) -> None:
        """Stop this answer from any thread: the model stops at its next token and serves the
        next request; later `next()` calls end the iteration."""
        self._closed = True
        self._req.cancel()

    close = cancel  # the generator spelling, so callers and frameworks can treat it as one

    def __enter__(self) -> TokenStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def __del__(self) -> None:
        # Abandoned without close(): free the model now rather than after idle_timeout.
        if self._submitted and not self._req.done:
            self._req.cancel()


class SerializedModel(ChatModelBase):
    """A ChatModel whose calls run one at a time on one owner thread (see the module docstring).

    `stop`: an optional threading.Event per call; setting it (e.g. from a Stop button) ends the
    call with `Cancelled` and frees the model at its next token (a running `complete`/`choose`
    cannot be interrupted inside the backend; it finishes and its answer is dropped).
    `idle_timeout`: seconds a stream whose buffer is full waits for its reader before the model
    is given to the next request. `buffer`: tokens a stream may run ahead of its reader.
    `close()` ends the owner thread after the queued requests (also when the model is collected).
    `workers`: calls served at once; 1 unless the model declares itself `thread_safe` (a pool of
    servers), which gets THREAD_SAFE_WORKERS so that every server stays busy.
    """

    def __init__(self, model: ChatModel, *, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 buffer: int = DEFAULT_BUFFER, workers: int | None = None):
        if buffer < 1 or idle_timeout <= 0:
            raise ValueError("buffer must be at least 1 and idle_timeout positive")
        self.workers = workers or (THREAD_SAFE_WORKERS if model.thread_safe else 1)
        if self.workers > 1 and not model.thread_safe:
            raise ValueError(f"{model.name} is one mutable thing: it is served by one owner thread")
        self.model = model
        self.name, self.dialect, self.sees_images = model.name, model.dialect, model.sees_images
        self.usage = model.usage
        self.small = model.small
        self.idle_timeout = idle_timeout
        self._owner = _Owner(model, idle_timeout, buffer, self.workers)
        self._finalizer = weakref.finalize(self, self._owner.stop)

    # --- the ChatModel protocol ------------------------------------------------------------
    def stream(self, prompt: Prompt, sampling: Sampling, *, stop: threading.Event | None = None) -> TokenStream:
        return TokenStream(self._owner, prompt, sampling, stop)

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling, *,
                 stop: threading.Event | None = None) -> list[str]:
        model, prompts = self.model, list(prompts)  # the request holds the model, not self
        return self._call(lambda: model.complete(prompts, sampling), stop)

    def choose(self, prompt: Prompt, options: Sequence[str], *, stop: threading.Event | None = None) -> list[float]:
        model, options = self.model, list(options)
        return self._call(lambda: model.choose(prompt, options), stop)

    # --- state -----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a request is queued or running on the model."""
        return not self._owner.idle.is_set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no request is queued or running; False if `timeout` passed first."""
        return self._owner.idle.wait(timeout)

    def close(self) -> None:
        """Stop the owner thread once the queued requests are served (also done on collection)."""
        self._finalizer()

    def _call(self, work: Callable[[], Any], stop: threading.Event | None) -> Any:
        req = _Request(work, stop=stop)
        self._owner.submit(req)
        with req.cond:
            req.wait_for(lambda: req.done)
            if req.stopped:
                raise Cancelled("stopped before the model finished")
            if req.error is not None:
                raise req.error
            return req.result
