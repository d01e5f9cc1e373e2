"""Will llama.cpp run on this CPU? Asked once, in a child process, before the app relies on it.

A llama.cpp built for another CPU (a `-march=native` build from another machine, a wheel reused
from pip's cache, AMX kernels on a Xeon whose kernel has not granted the tile registers) dies
with SIGILL the first time it reaches an instruction this CPU will not run - inside a prefill or
a decode, long after import. A signal cannot be caught in Python, so the process that holds a
writer's article must not be the first to try: a child loads the same GGUF file with the same
thread counts, reads a short prompt (the batched matrix kernels) and decodes a few tokens (the
one-token kernels). If the child dies by a signal the caller gets one line with the fix.

The answer is remembered (in the user's cache folder) for this llama.cpp build, this CPU, this
model file and these thread counts, so only the first load on a machine pays the second or two
the child takes.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from composer.model.base import ModelError

REINSTALL = ("pip cache remove llama_cpp_python; pip uninstall -y llama-cpp-python; "
             "pip install -r requirements.txt")
PROBE_TIMEOUT_S = 300.0  # loading and reading 32 tokens of an 8B GGUF on a slow laptop fits
PROBE_PROMPT_TOKENS = 32
PROBE_DECODE_TOKENS = 4


class LlamaCrashError(ModelError):
    """llama.cpp's native code cannot run on this CPU (or crashed loading this file)."""


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    message: str = ""


def llama_library_dir() -> Path | None:
    """The folder of llama-cpp-python's shared libraries, found without importing llama_cpp
    (importing it loads libggml, whose start-up code may already use this CPU's instructions)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    return lib if lib.is_dir() else None


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _file_stamp(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def probe_key(model_path: Path, n_threads: int, n_threads_batch: int) -> str:
    """What the answer depends on: the native libraries, the CPU, the model file, the threads."""
    lib = llama_library_dir()
    libs = sorted(_file_stamp(p) for p in lib.iterdir() if p.is_file()) if lib else []
    parts = [libs, hashlib.sha256(_cpu_flags().encode()).hexdigest(), _file_stamp(model_path),
             n_threads, n_threads_batch, sys.version]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "composer" / "llama-probe.json"


def _remembered(key: str) -> bool:
    try:
        return key in json.loads(cache_file().read_text()).get("passed", [])
    except (OSError, ValueError, AttributeError):
        return False


def _remember(key: str) -> None:
    """Best effort: a cache folder that cannot be written only means the next load probes again."""
    path = cache_file()
    try:
        try:
            passed = list(json.loads(path.read_text()).get("passed", []))[-63:]
        except (OSError, ValueError, AttributeError):
            passed = []
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"passed": [*passed, key]}))
        os.replace(tmp, path)
    except OSError:
        pass


def signal_name(returncode: int) -> str:
    try:
        sig = signal.Signals(-returncode)
    except ValueError:
        return f"signal {-returncode}"
    described = {signal.SIGILL: "Illegal instruction", signal.SIGSEGV: "Segmentation fault",
                 signal.SIGBUS: "Bus error", signal.SIGFPE: "Floating point exception"}.get(sig)
    return f"{described}, {sig.name}" if described else sig.name


def run_probe(argv: list[str], timeout: float = PROBE_TIMEOUT_S) -> ProbeOutcome:
    """Run a probe command; a death by signal becomes the one-line message with the fix."""
    # The child imports composer from where this process did, installed or not.
    here = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), here) if p))
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return ProbeOutcome(False, f"llama.cpp did not answer a 32-token test within {timeout:.0f} s on this machine")
    if done.returncode == 0:
        return ProbeOutcome(True)
    if done.returncode < 0:
        return ProbeOutcome(False, (
            f"llama.cpp crashed on this CPU ({signal_name(done.returncode)}): the installed llama-cpp-python was "
            f"built for another processor. Rebuild it for any x86-64 CPU: {REINSTALL}"))
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return ProbeOutcome(False, f"llama.cpp could not load the model: {lines[-1] if lines else 'no message'}")


def ensure_llama_runs(model_path: str | Path, n_threads: int, n_threads_batch: int) -> None:
    """Raise LlamaCrashError with one line unless llama.cpp can run this GGUF on this CPU."""
    path = Path(model_path)
    key = probe_key(path, n_threads, n_threads_batch)
    if _remembered(key):
        return
    outcome = run_probe([sys.executable, "-m", "composer.model.llama_probe", str(path),
                         str(n_threads), str(n_threads_batch)])
    if not outcome.ok:
        raise LlamaCrashError(outcome.message)
    _remember(key)


def _child(model_path: str, n_threads: int, n_threads_batch: int) -> None:
    """The probe itself: what the model will do first, on a small context."""
    from llama_cpp import Llama

    llm = Llama(model_path=model_path, n_ctx=256, n_threads=n_threads, n_threads_batch=n_threads_batch,
                n_batch=512, verbose=False)
    prompt = llm.tokenize(b"The quick brown fox jumps over the lazy dog. " * 8, add_bos=True)[:PROBE_PROMPT_TOKENS]
    llm.eval(prompt)
    for _ in range(PROBE_DECODE_TOKENS):
        llm.eval(prompt[-1:])  # any valid token: the one-token kernels are what is tested


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
