"""How this process shares the CPU: one thread policy for llama.cpp, torch and the library sync.

A writer's laptop is never quiet. Two thread pools that spin while they wait (ggml's OpenMP
workers, torch's intra-op pool) starve each other on the same cores: measured on 2 cores, the
embedded model fell from 67 to 1-3 tokens/s while the image encoder ran beside it. The policy:

- OpenMP threads sleep while they wait (OMP_WAIT_POLICY=PASSIVE), unless the user chose otherwise.
  libgomp reads this once, when it is loaded: `apply_env()` must run before llama_cpp or torch is
  imported. `import composer` runs it (composer/__init__.py), so every entry point gets it.
- llama.cpp decodes on few threads (one token at a time is memory-bound: more threads add
  barriers, and a barrier waits for the slowest, descheduled thread) and runs prompts on many
  (prefill is compute-bound).
- The library sync runs in a worker thread at a lower priority (a higher nice value, Linux
  per-thread; threads it starts, torch's OpenMP pool included, inherit it) and, once a model is
  loaded in the process, with torch bounded to the cores decode leaves free: an index job can
  never take the CPU from a generation, and alone it keeps its full speed.

Every choice can be overridden by an environment variable (see ENV and the README section "On a
shared machine"). `choose_policy` is a pure function of the core count and the environment.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# Environment variables a user sets to override the policy.
ENV_THREADS = "COMPOSER_THREADS"  # llama.cpp threads while decoding (one token at a time)
ENV_BATCH_THREADS = "COMPOSER_BATCH_THREADS"  # llama.cpp threads while reading a prompt
ENV_TORCH_THREADS = "COMPOSER_TORCH_THREADS"  # torch intra-op threads of the sync beside a model
ENV_SYNC_NICE = "COMPOSER_SYNC_NICE"  # how much lower the library sync's priority is (0-19)
ENV = (ENV_THREADS, ENV_BATCH_THREADS, ENV_TORCH_THREADS, ENV_SYNC_NICE)

# Decoding a 135M model gains nothing past a few threads; prompts gain up to about a dozen.
MAX_DECODE_THREADS = 4
MAX_BATCH_THREADS = 16
DEFAULT_SYNC_NICE = 10  # CFS weight 110 against 1024: the sync gets about a tenth of a contested core


class PolicyError(ValueError):
    """An override that is not a number in range: one line naming the variable."""


@dataclass(frozen=True)
class ThreadPolicy:
    decode_threads: int
    batch_threads: int
    torch_threads: int
    sync_nice: int


def choose_policy(cores: int, env: Mapping[str, str]) -> ThreadPolicy:
    """The thread counts for a machine with `cores` usable cores; a variable in `env` wins."""
    cores = max(1, int(cores))
    # Decode leaves at least half the cores to everything else (browser, encoder, other apps).
    decode = _read(env, ENV_THREADS, max(1, min(MAX_DECODE_THREADS, cores // 2)), 1, 1024)
    batch = _read(env, ENV_BATCH_THREADS, max(1, min(MAX_BATCH_THREADS, cores)), 1, 1024)
    torch_threads = _read(env, ENV_TORCH_THREADS, max(1, cores - decode), 1, 1024)
    nice = _read(env, ENV_SYNC_NICE, DEFAULT_SYNC_NICE, 0, 19)
    return ThreadPolicy(decode, batch, torch_threads, nice)


def _read(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PolicyError(f"{name}={raw!r}: expected a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise PolicyError(f"{name}={raw!r}: expected a whole number from {low} to {high}")
    return value


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def policy() -> ThreadPolicy:
    return choose_policy(usable_cores(), os.environ)


# --- process-wide settings, before the thread pools start --------------------------------------
def openmp_env(env: Mapping[str, str]) -> dict[str, str]:
    """The OpenMP variables to add: passive waiting, unless the user set a wait policy or spin count."""
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return {}
    return {"OMP_WAIT_POLICY": "PASSIVE"}


def apply_env() -> list[str]:
    """Set the OpenMP variables in this process's environment (idempotent). Returns the names of
    the libraries already loaded, for which it is too late (they read the variables at load)."""
    for key, value in openmp_env(os.environ).items():
        os.environ[key] = value
    return [m for m in ("llama_cpp", "torch") if m in sys.modules]


# --- the library sync's worker thread ----------------------------------------------------------
def lower_this_thread(nice: int) -> bool:
    """Raise the nice value of the calling thread only (Linux keeps a nice value per thread) by
    `nice`. Threads it creates afterwards inherit it. False where the platform cannot."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        return True
    except OSError as exc:  # a sandbox that forbids it: the sync still runs, only not politely
        log.debug("cannot lower the sync thread's priority: %s", exc)
        return False


def bound_torch_threads(n: int) -> None:
    """Bound torch's intra-op threads for the calling thread. With OpenMP each thread keeps its own
    count once it has run a parallel op, so this binds the sync thread, not the caller of compose."""
    if "torch" not in sys.modules:
        return
    import torch

    if torch.get_num_threads() > n:
        torch.set_num_threads(n)


# Set once a model that runs on this machine's CPU is loaded in this process: from then on the
# background work leaves it its cores. Without one (`python -m composer index`) torch keeps them all.
_model_resident = threading.Event()


def model_loaded() -> None:
    """Called by a backend that generates on this CPU (the embedded model), when it is loaded."""
    _model_resident.set()


def run_in_background(work: Callable[[threading.Event], T], name: str = "composer-background") -> T:
    """Run `work(stop)` in a fresh thread at the background priority, torch bounded, when a model
    shares the process (else in the calling thread); wait for it and return its result or raise
    its exception here. A fresh
    thread because a raised nice value cannot be lowered again without privileges.

    If the wait is interrupted (Ctrl-C), `stop` is set and the worker is waited for before the
    interrupt goes on: `work` should check `stop` between steps. A process must not exit while
    the worker is inside torch (its C++ runtime aborts the exit)."""
    stop = threading.Event()
    if not _model_resident.is_set():
        # Alone in the process (`composer index`): no generation to protect, and torch run from
        # a second thread indexed ~40% slower here (benchmarks/index_speed.py: 29 vs 51 images/s).
        return work(stop)
    p = policy()
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        lower_this_thread(p.sync_nice)
        if _model_resident.is_set() or ENV_TORCH_THREADS in os.environ:
            bound_torch_threads(p.torch_threads)
        try:
            result.append(work(stop))
        except BaseException as exc:  # handed to the waiting thread
            error.append(exc)
        finally:
            finished.set()

    # The worker says when it has finished: on Python 3.11 a Thread.join() interrupted by
    # Ctrl-C leaves the thread looking dead (is_alive() False, join() returns at once) while it
    # still runs, and the process then exits under it and aborts.
    finished = threading.Event()
    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    try:
        # Short waits: a plain wait() would hold off Ctrl-C until the work is done.
        while not finished.wait(0.2):
            pass
    except BaseException:
        stop.set()
        finished.wait()
        raise
    thread.join()
    if error:
        raise error[0]
    return result[0]
