"""The thread policy (composer.runtime): its choices, the environment overrides, the background
priority of the library sync, and a sync and a real generation running together in one process."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from composer import runtime
from composer.runtime import ThreadPolicy, choose_policy

ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def _nice(tid: int | None = None) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid if tid is not None else threading.get_native_id())


# --- choices ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cores", [1, 2, 8, 64])
def test_policy_is_sane_for_any_core_count(cores):
    p = choose_policy(cores, {})
    assert 1 <= p.decode_threads <= max(1, cores // 2)
    assert p.decode_threads <= p.batch_threads <= cores
    assert 1 <= p.torch_threads <= cores
    # Decode and the sync's torch never ask for more cores than there are (one core: both need one).
    assert p.decode_threads + p.torch_threads <= max(cores, 2)
    assert 0 < p.sync_nice <= 19


def test_policy_on_the_small_machines_it_was_measured_on():
    # One core or two: decode on one thread, prompts on all, the sync's torch on what is left.
    assert choose_policy(1, {}) == ThreadPolicy(decode_threads=1, batch_threads=1, torch_threads=1, sync_nice=10)
    assert choose_policy(2, {}) == ThreadPolicy(decode_threads=1, batch_threads=2, torch_threads=1, sync_nice=10)


def test_policy_bounds_threads_on_a_big_machine():
    p = choose_policy(64, {})
    assert p.decode_threads == runtime.MAX_DECODE_THREADS
    assert p.batch_threads == runtime.MAX_BATCH_THREADS
    assert p.torch_threads == 64 - p.decode_threads


def test_environment_overrides_win():
    env = {"COMPOSER_THREADS": "3", "COMPOSER_BATCH_THREADS": "5", "COMPOSER_TORCH_THREADS": "7",
           "COMPOSER_SYNC_NICE": "0"}
    for cores in (1, 2, 8, 64):
        assert choose_policy(cores, env) == ThreadPolicy(3, 5, 7, 0)
    # One override leaves the others to the policy; the torch default follows the decode override.
    assert choose_policy(8, {"COMPOSER_THREADS": "6"}) == ThreadPolicy(6, 8, 2, 10)
    assert choose_policy(8, {"COMPOSER_THREADS": " "}) == choose_policy(8, {})


@pytest.mark.parametrize("name,value", [("COMPOSER_THREADS", "two"), ("COMPOSER_THREADS", "0"),
                                        ("COMPOSER_BATCH_THREADS", "-1"), ("COMPOSER_SYNC_NICE", "20")])
def test_bad_override_names_the_variable(name, value):
    with pytest.raises(runtime.PolicyError, match=f"^{name}="):
        choose_policy(4, {name: value})


def test_openmp_waits_passively_unless_the_user_chose():
    assert runtime.openmp_env({}) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert runtime.openmp_env({"OMP_WAIT_POLICY": "ACTIVE"}) == {}
    assert runtime.openmp_env({"GOMP_SPINCOUNT": "100000"}) == {}


def _env_after_import(extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(extra, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", "import os, composer; print(os.environ.get('OMP_WAIT_POLICY'))"],
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_composer_sets_the_wait_policy_before_any_pool_starts():
    assert _env_after_import({}) == "PASSIVE"
    assert _env_after_import({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


# --- the background thread -------------------------------------------------------------------
@pytest.fixture
def model_in_process(monkeypatch):
    """As after the embedded model has loaded in this process (the app, compose --library)."""
    resident = threading.Event()
    resident.set()
    monkeypatch.setattr(runtime, "_model_resident", resident)


def test_without_a_model_background_work_runs_in_the_callers_thread(monkeypatch):
    monkeypatch.setattr(runtime, "_model_resident", threading.Event())
    assert runtime.run_in_background(lambda stop: threading.get_native_id()) == threading.get_native_id()


@linux_only
def test_background_work_runs_at_lower_priority_and_its_threads_inherit_it(monkeypatch, model_in_process):
    monkeypatch.setenv("COMPOSER_SYNC_NICE", "5")
    mine = _nice()
    seen = {}

    def work(stop):
        seen["tid"] = threading.get_native_id()
        seen["nice"] = _nice()
        child = threading.Thread(target=lambda: seen.update(child=_nice()))
        child.start()
        child.join()
        return "result"

    assert runtime.run_in_background(work) == "result"
    assert seen["tid"] != threading.get_native_id()
    assert seen["nice"] == min(19, mine + 5)
    assert seen["child"] == seen["nice"]
    assert _nice() == mine  # the caller keeps its own priority


def test_background_work_hands_its_exception_to_the_caller():
    def work(stop):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        runtime.run_in_background(work)


def test_background_work_bounds_torch_threads_in_its_thread(model_in_process, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("COMPOSER_TORCH_THREADS", "1")
    before = torch.get_num_threads()
    try:
        seen = runtime.run_in_background(
            lambda stop: (torch.ones(64, 64) @ torch.ones(64, 64), torch.get_num_threads())[1])
        assert seen == 1
    finally:
        torch.set_num_threads(before)


BOUND_CHECK = """
import composer, torch
from composer import runtime
torch.set_num_threads(4)
probe = lambda stop: (torch.ones(64, 64) @ torch.ones(64, 64), torch.get_num_threads())[1]
alone = runtime.run_in_background(probe)
runtime.model_loaded()
print(alone, runtime.run_in_background(probe))
"""


def test_torch_is_bounded_only_once_a_model_shares_the_process():
    pytest.importorskip("torch")
    # Decode takes all cores but one, so the bound leaves torch one thread on any machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSER_")}
    env.update(PYTHONPATH=str(ROOT), COMPOSER_THREADS=str(max(1, runtime.usable_cores() - 1)))
    out = subprocess.run([sys.executable, "-c", BOUND_CHECK], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["4", "1"]


# --- the embedded model ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def gguf():
    pytest.importorskip("llama_cpp")
    from composer.model.embedded import embedded_gguf_path

    return embedded_gguf_path()


def test_embedded_model_takes_its_threads_from_the_policy(gguf, monkeypatch):
    from composer.model.embedded import EmbeddedModel

    monkeypatch.setenv("COMPOSER_THREADS", "1")
    monkeypatch.setenv("COMPOSER_BATCH_THREADS", "3")
    model = EmbeddedModel(n_ctx=512)
    assert (model.llm.context_params.n_threads, model.llm.context_params.n_threads_batch) == (1, 3)
    # An explicit argument wins over the environment.
    model = EmbeddedModel(n_ctx=512, n_threads=2, n_threads_batch=2)
    assert (model.llm.context_params.n_threads, model.llm.context_params.n_threads_batch) == (2, 2)


def test_library_sync_and_a_generation_share_one_process_and_both_finish(gguf, tmp_path):
    """The app's situation: the library syncs (every image embedded, torch busy) while the real
    embedded model writes. Both must finish; the bound is generous and is not a timing claim."""
    pytest.importorskip("efficientnet_lite_pytorch")
    from composer.model.base import Prompt, Sampling
    from composer.model.embedded import EmbeddedModel
    from composer.retrieval import ImageLibrary, load_encoder

    bound = 120.0
    folder = tmp_path / "library"
    shutil.copytree(ROOT / "assets" / "library", folder)
    n_images = len(list(folder.glob("*.jpg")))
    encoder = load_encoder("embedded")
    model = EmbeddedModel(n_ctx=1024)
    outcome: dict = {}

    def sync():
        try:
            with ImageLibrary(folder, encoder=encoder) as lib:
                outcome["report"] = lib.sync(batch_size=2)  # several batches: the sync overlaps the generation
        except BaseException as exc:
            outcome["error"] = exc

    syncer = threading.Thread(target=sync, daemon=True)
    start = time.monotonic()
    syncer.start()
    text = "".join(model.stream(Prompt.user("Write a short paragraph about a café in the morning."),
                                Sampling(temperature=0, max_new_tokens=48, stop=())))
    generated = time.monotonic() - start
    syncer.join(timeout=max(1.0, bound - generated))
    assert not syncer.is_alive(), f"the library sync did not finish within {bound:.0f} s"
    assert "error" not in outcome, outcome.get("error")
    assert generated < bound, f"the generation took {generated:.0f} s beside the sync"
    assert text.strip() and model.usage.decode > 0
    assert outcome["report"].embedded == n_images


INTERRUPTED_SYNC = """
import os, signal, sys
from composer.retrieval import ImageLibrary

def progress(p):
    if p.done == 1:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the worker is embedding

try:
    with ImageLibrary(sys.argv[1], encoder="embedded") as lib:
        lib.sync(progress=progress, batch_size=1)
    print("not interrupted")
except KeyboardInterrupt:
    with ImageLibrary(sys.argv[1]) as lib:
        print("interrupted", len(lib), lib.check())
"""


def test_ctrl_c_during_a_sync_stops_the_worker_and_the_process_exits_cleanly(tmp_path):
    """The sync's worker is inside torch when Ctrl-C comes: the process must stop it and exit
    normally (a process that exits while torch runs in a daemon thread aborts)."""
    pytest.importorskip("efficientnet_lite_pytorch")
    folder = tmp_path / "library"
    shutil.copytree(ROOT / "assets" / "library", folder)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", INTERRUPTED_SYNC, str(folder)], env=env, capture_output=True,
                         text=True, timeout=300, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert out.returncode == 0, out.stderr[-2000:]
    words = out.stdout.split()
    assert words[0] == "interrupted", out.stdout
    # Stopped early, consistent: fewer images than the folder holds, no problems found.
    assert 1 <= int(words[1]) < len(list(folder.glob("*.jpg")))
    assert out.stdout.strip().endswith("[]")
