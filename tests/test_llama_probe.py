"""A llama.cpp that cannot run on this CPU is a one-line message with the fix, never a vanished
process: the model is first run in a child process (composer.model.llama_probe)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from composer.model.base import ModelError
from composer.model.embedded import embedded_gguf_path
from composer.model.llama_probe import REINSTALL, cache_file, ensure_llama_runs, probe_key, run_probe

ROOT = Path(__file__).parent.parent
REQUEST = ROOT / "assets" / "examples" / "cafe-morning.json"


@pytest.fixture
def crashing_llama(tmp_path: Path) -> dict[str, str]:
    """An environment whose llama_cpp dies by SIGILL as soon as it is used, as a -march=native
    or AMX build does on a CPU it was not built for; and an empty probe cache."""
    fake = tmp_path / "fake" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), str(ROOT)]))
    return env


def test_a_child_killed_by_sigill_is_one_line_with_the_fix():
    outcome = run_probe([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"])
    assert not outcome.ok and "\n" not in outcome.message
    assert "Illegal instruction" in outcome.message and REINSTALL in outcome.message


def test_a_child_that_fails_otherwise_names_its_last_line():
    outcome = run_probe([sys.executable, "-c", "raise SystemExit('bad magic in model file')"])
    assert not outcome.ok and outcome.message.endswith("bad magic in model file")


def test_compose_on_a_crashing_llama_cpp_exits_2_with_the_fix(crashing_llama, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "composer", "compose", "--request", str(REQUEST), "--out", str(out),
                           "--quiet"], env=crashing_llama, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr  # not 132 (SIGILL), not a traceback
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Illegal instruction" in errors[0] and REINSTALL in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() or not any(out.iterdir())


def test_the_app_on_a_crashing_llama_cpp_says_why_and_stops(crashing_llama, tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "--data", str(tmp_path / "data"), "--port", "0"],
                          env=crashing_llama, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and done.returncode > 0, done.stderr
    assert "Illegal instruction" in done.stderr and REINSTALL in done.stderr
    assert "Traceback" not in done.stderr


def test_a_passing_probe_is_remembered_for_this_build_cpu_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = embedded_gguf_path()
    ensure_llama_runs(path, 1, 2)  # the real child on the real build: it runs here
    assert probe_key(path, 1, 2) in json.loads(cache_file().read_text())["passed"]

    def no_child(argv, timeout=0):
        raise AssertionError("probed again")

    monkeypatch.setattr("composer.model.llama_probe.run_probe", no_child)
    ensure_llama_runs(path, 1, 2)  # remembered: no second child
    with pytest.raises(AssertionError):
        ensure_llama_runs(path, 1, 3)  # other thread counts are another question


def test_a_crash_is_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from composer.model import llama_probe

    monkeypatch.setattr(llama_probe, "run_probe", lambda argv, timeout=0: llama_probe.ProbeOutcome(False, "crashed"))
    for _ in range(2):
        with pytest.raises(ModelError, match="crashed"):
            ensure_llama_runs(embedded_gguf_path(), 1, 2)
    assert not cache_file().exists()
