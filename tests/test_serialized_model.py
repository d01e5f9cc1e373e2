"""SerializedModel: one owner thread runs the model, whatever thread reads, closes or drops a stream.

Gradio resumes a generator on whichever worker thread is free and closes abandoned generators
from another thread; these tests do the same. Every wait is bounded (`on_thread`), so a
regression shows as a failure, never as a hung test run.
"""
from __future__ import annotations

import gc
import threading
import time
from collections import Counter

import pytest

from composer.model import load_model
from composer.model.base import ChatModel, ChatModelBase, ModelError, Prompt, Sampling, TokenUsage
from composer.model.serialized import Cancelled, SerializedModel, StreamAbandoned

BOUND = 20.0  # seconds: far beyond any healthy wait here, only there so that a hang fails
REAL_BOUND = 300.0  # the same, for the real model on a busy shared CPU
ENDLESS = 10**6  # tokens: a stream that only ends when it is stopped


class FakeModelError(ModelError):
    pass


class SlowModel(ChatModelBase):
    """A ChatModel that writes `tag:i ` tokens with a small sleep each, and records which threads
    ran it, how many streams ran at once and how many tokens each tag produced. A prompt starting
    with "fail" raises after two tokens."""

    name = "fake:slow"
    dialect = "generic"
    sees_images = False

    def __init__(self, delay: float = 0.002):
        self.delay = delay
        self.usage = TokenUsage()
        self.produced: Counter[str] = Counter()
        self.finished: set[str] = set()  # tags whose generator ended (closed or exhausted)
        self.threads: set[int] = set()
        self.active = self.max_active = 0
        self._lock = threading.Lock()

    def stream(self, prompt: Prompt, sampling: Sampling):
        tag = prompt.turns[-1].text
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.threads.add(threading.get_ident())
        try:
            for i in range(sampling.max_new_tokens):
                if tag.startswith("fail") and i == 2:
                    raise FakeModelError(f"boom: {tag}")
                time.sleep(self.delay)
                self.produced[tag] += 1
                yield f"{tag}:{i} "
        finally:
            with self._lock:
                self.active -= 1
            self.finished.add(tag)

    def complete(self, prompts, sampling):
        return ["".join(self.stream(p, sampling)) for p in prompts]

    def choose(self, prompt, options):
        self.threads.add(threading.get_ident())
        if prompt.turns[-1].text.startswith("fail"):
            raise FakeModelError("boom: choose")
        return [float(len(o)) for o in options]


def P(text: str) -> Prompt:
    return Prompt.user(text)


def S(n: int) -> Sampling:
    return Sampling(temperature=0, max_new_tokens=n)


def expected(tag: str, n: int) -> str:
    return "".join(f"{tag}:{i} " for i in range(n))


_linger = threading.Event()


@pytest.fixture(autouse=True)
def distinct_threads():
    """Threads started by on_thread stay alive until the test ends, so that no two of them share
    a thread id (Python reuses the id of a finished thread, which would hide the defect)."""
    yield
    _linger.set()
    _linger.clear()


def on_thread(fn, timeout: float = BOUND):
    """Run fn on a new thread; return its result or raise its exception; fail if it hangs."""
    box: dict = {}
    done = threading.Event()

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc
        done.set()
        _linger.wait(REAL_BOUND)

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(timeout), f"still waiting after {timeout} s: the model is held"
    if "error" in box:
        raise box["error"]
    return box.get("value")


_END = object()


def step(it):
    """One next() that reports the end instead of raising StopIteration across threads."""
    return next(it, _END)


def read_each_step_on_a_new_thread(it, timeout: float = BOUND) -> str:
    out = ""
    while (tok := on_thread(lambda: step(it), timeout)) is not _END:
        out += tok
    return out


@pytest.fixture
def slow():
    return SlowModel()


@pytest.fixture
def model(slow):
    m = SerializedModel(slow, buffer=4)
    yield m
    m.close()


# --- (a) resumed on another thread each step ------------------------------------------------
def test_stream_resumed_on_a_different_thread_each_step(model, slow):
    assert read_each_step_on_a_new_thread(model.stream(P("a"), S(6))) == expected("a", 6)
    # ...and the model is free afterwards for a caller on yet another thread.
    assert on_thread(lambda: model.complete([P("b")], S(3))) == [expected("b", 3)]
    assert len(slow.threads) == 1  # the model itself ran on one thread only


# --- (b) closed from another thread --------------------------------------------------------
def test_stream_closed_from_another_thread_frees_the_model(model, slow):
    it = model.stream(P("long"), S(ENDLESS))
    assert "".join(on_thread(lambda: [next(it) for _ in range(3)])) == expected("long", 3)
    on_thread(it.close)
    assert on_thread(lambda: model.complete([P("next")], S(3))) == [expected("next", 3)]
    assert "long" in slow.finished and slow.produced["long"] < ENDLESS
    assert next(it, _END) is _END  # a closed stream ends, as a closed generator does


def test_closing_a_relaying_generator_from_another_thread_frees_the_model(model, slow):
    """What Gradio does: the planner's generator relays model.stream and Gradio closes it."""

    def relay():
        # A plain loop, as the planner's is: unlike `yield from`, close() is not passed on to the
        # model's stream, which must be freed by being dropped.
        for delta in model.stream(P("long"), S(ENDLESS)):  # noqa: UP028 - see above
            yield delta

    gen = relay()
    on_thread(lambda: [next(gen) for _ in range(2)])
    on_thread(gen.close)
    assert on_thread(lambda: model.complete([P("next")], S(2))) == [expected("next", 2)]
    assert "long" in slow.finished


def test_a_dropped_stream_frees_the_model_at_once(slow):
    m = SerializedModel(slow, buffer=4, idle_timeout=BOUND * 10)  # only the drop can free it
    it = m.stream(P("long"), S(ENDLESS))
    # A closure, not a default argument: on_thread's lingering thread keeps the lambda, and the
    # `del` below must still drop the last reference to the stream.
    on_thread(lambda: next(it))  # noqa: F821 - runs before the del
    del it
    assert on_thread(lambda: m.choose(P("x"), ["a", "bb"])) == [1.0, 2.0]
    assert "long" in slow.finished
    m.close()


# --- (c) concurrent writers ----------------------------------------------------------------
def test_concurrent_streams_are_complete_and_not_interleaved(model, slow):
    tags = ["w1", "w2", "w3"]
    outs: dict[str, str] = {}

    def write(tag):
        outs[tag] = "".join(model.stream(P(tag), S(25)))

    threads = [threading.Thread(target=write, args=(t,), daemon=True) for t in tags]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert outs == {t: expected(t, 25) for t in tags}
    assert slow.max_active == 1 and len(slow.threads) == 1


def test_a_thread_safe_model_serves_several_calls_at_once(slow):
    """A pool of servers (RemoteChatModel declares thread_safe) is given several owner threads,
    so a second writer does not wait for the first; a model that is one mutable thing never is."""
    slow.thread_safe = True
    model = SerializedModel(slow)
    assert model.workers > 1
    outs: dict[str, str] = {}

    def write(tag):
        outs[tag] = "".join(model.stream(P(tag), S(25)))

    threads = [threading.Thread(target=write, args=(t,), daemon=True) for t in ("w1", "w2", "w3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert outs == {t: expected(t, 25) for t in ("w1", "w2", "w3")}
    assert slow.max_active > 1
    slow.thread_safe = False
    with pytest.raises(ValueError, match="one owner"):
        SerializedModel(slow, workers=2)
    assert SerializedModel(slow).workers == 1


# --- (d) a reader that never comes back ----------------------------------------------------
def test_a_reader_that_stops_reading_is_dropped_after_the_idle_timeout(slow):
    m = SerializedModel(slow, buffer=2, idle_timeout=0.3)
    it = m.stream(P("idle"), S(ENDLESS))
    first = on_thread(lambda: next(it))
    # `it` stays referenced and unread, as a closed tab's generator that Gradio never closes.
    assert on_thread(lambda: m.complete([P("other")], S(3))) == [expected("other", 3)]
    assert "idle" in slow.finished
    # Coming back: what was buffered, then a clear error.
    rest = []
    with pytest.raises(StreamAbandoned, match="not read for 0.3 s"):
        while True:
            rest.append(on_thread(lambda: next(it)))
    assert first + "".join(rest) == expected("idle", 1 + len(rest)) and len(rest) <= 2
    m.close()


# --- (e) model errors ----------------------------------------------------------------------
def test_model_errors_reach_the_caller_unchanged_and_the_owner_serves_on(model):
    with pytest.raises(FakeModelError, match="boom: fail-stream"):
        on_thread(lambda: list(model.stream(P("fail-stream"), S(5))))
    with pytest.raises(FakeModelError, match="boom: fail-complete"):
        on_thread(lambda: model.complete([P("fail-complete")], S(5)))
    with pytest.raises(FakeModelError, match="boom: choose"):
        on_thread(lambda: model.choose(P("fail"), ["a"]))
    assert on_thread(lambda: "".join(model.stream(P("ok"), S(3)))) == expected("ok", 3)


# --- explicit cancellation and the busy flag -----------------------------------------------
def test_stop_event_cancels_a_running_stream(model, slow):
    stop = threading.Event()
    it = model.stream(P("long"), S(ENDLESS), stop=stop)
    on_thread(lambda: [next(it) for _ in range(2)])
    stop.set()
    with pytest.raises(Cancelled):
        on_thread(lambda: list(it))
    assert on_thread(lambda: model.complete([P("next")], S(2))) == [expected("next", 2)]
    assert "long" in slow.finished


def test_stop_event_cancels_a_queued_call_before_it_runs(model, slow):
    held = model.stream(P("held"), S(ENDLESS))
    on_thread(lambda: next(held))  # the owner now waits on this reader
    stop = threading.Event()
    result: dict = {}
    waiter = threading.Thread(target=lambda: result.setdefault("r", _catch(
        lambda: model.complete([P("queued")], S(3), stop=stop))), daemon=True)
    waiter.start()
    stop.set()
    waiter.join(BOUND)
    assert isinstance(result["r"], Cancelled)
    held.cancel()
    assert model.wait_idle(BOUND)
    assert slow.produced["queued"] == 0  # skipped, never run


def _catch(fn):
    try:
        return fn()
    except Exception as exc:
        return exc


def test_busy_while_a_request_is_queued_or_running(model):
    assert not model.busy
    it = model.stream(P("long"), S(ENDLESS))
    assert not model.busy  # a stream starts on its first next(), as a generator does
    on_thread(lambda: next(it))
    assert model.busy
    it.cancel()
    assert model.wait_idle(BOUND) and not model.busy


def test_is_a_chat_model_and_close_stops_the_owner(slow):
    m = SerializedModel(slow)
    assert isinstance(m, ChatModel)
    assert (m.name, m.dialect, m.sees_images, m.usage, m.small) == (slow.name, "generic", False, slow.usage, False)
    owner = [t for t in threading.enumerate() if t.name == "model-owner:fake:slow"]
    m.close()
    for t in owner:
        t.join(BOUND)
    assert owner and not any(t.is_alive() for t in owner)
    with pytest.raises(ModelError, match="was closed"):
        m.complete([P("late")], S(1))


def test_a_collected_model_stops_its_owner_thread():
    m = SerializedModel(SlowModel())
    # A closure, so that the lingering thread's lambda does not keep the model alive after `del m`.
    assert on_thread(lambda: m.complete([P("a")], S(1))) == [expected("a", 1)]  # noqa: F821 - runs before the del
    owner = [t for t in threading.enumerate() if t.name == "model-owner:fake:slow"]
    del m
    gc.collect()
    for t in owner:
        t.join(BOUND)
    assert owner and not any(t.is_alive() for t in owner)


# --- the real embedded model ---------------------------------------------------------------
@pytest.fixture(scope="module")
def embedded():
    # One llama.cpp thread: on a CPU shared with other jobs, more threads spin-wait and run slower.
    m = SerializedModel(load_model("embedded", n_threads=1))
    yield m
    m.close()


def test_embedded_stream_resumed_on_other_threads_matches_a_plain_read(embedded):
    assert embedded.small  # declared by the wrapped model, read by the planner
    p, s = P("Name three fruits."), Sampling(temperature=0, max_new_tokens=8)
    plain = on_thread(lambda: "".join(embedded.stream(p, s)), REAL_BOUND)
    assert plain.strip()
    assert read_each_step_on_a_new_thread(embedded.stream(p, s), REAL_BOUND) == plain
    # Closed half-way from another thread, then a second request finishes.
    it = embedded.stream(P("Describe the sea."), Sampling(temperature=0, max_new_tokens=200))
    on_thread(lambda: next(it), REAL_BOUND)
    on_thread(it.close)
    assert on_thread(lambda: embedded.complete([p], s), REAL_BOUND) == [plain]


def test_embedded_concurrent_writers_match_their_sequential_answers(embedded):
    prompts = [P("Name three fruits."), P("Name two colours.")]
    s = Sampling(temperature=0, max_new_tokens=10)
    alone = [on_thread(lambda p=p: "".join(embedded.stream(p, s)), REAL_BOUND) for p in prompts]
    outs: dict[int, str] = {}

    def write(k):
        outs[k] = "".join(embedded.stream(prompts[k], s))

    threads = [threading.Thread(target=write, args=(k,), daemon=True) for k in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(REAL_BOUND)
    assert [outs.get(k) for k in range(len(prompts))] == alone
