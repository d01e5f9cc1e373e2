"""`python -m composer index|search`: the run functions behind the argparse wiring."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from composer.retrieval.cli import add_index_parser, add_search_parser


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    add_index_parser(sub)
    add_search_parser(sub)
    return parser.parse_args(argv)


def run(argv: list[str]) -> tuple[int, str, str]:
    args = parse(argv)
    out, err = io.StringIO(), io.StringIO()
    return args.run(args, out=out, err=err), out.getvalue(), err.getvalue()


def make_folder(root: Path) -> Path:
    for i in range(4):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(root / f"pic{i}.png")
    (root / "broken.jpg").write_bytes(b"nope")
    return root


def test_index_then_search(tmp_path, tiny_clip_spec):
    folder = make_folder(tmp_path)
    code, out, err = run(["index", str(folder), "--encoder", tiny_clip_spec])
    assert code == 0
    assert "added 4, updated 0, removed 0, skipped 1" in out
    assert "broken.jpg" in err
    code, out, _ = run(["search", "a cat", "--library", str(folder), "-k", "2"])
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    path, score = lines[0].split("\t")
    assert Path(path).parent == folder and -1.0 <= float(score) <= 1.0


def test_index_of_a_missing_folder_is_one_line_and_exit_2(tmp_path):
    code, out, err = run(["index", str(tmp_path / "missing")])
    assert code == 2 and out == ""
    assert err.strip() == f"error: {tmp_path / 'missing'}: no such folder"


def test_search_before_index_and_with_another_encoder_exit_2(tmp_path, tiny_clip_spec):
    folder = make_folder(tmp_path)
    code, _, err = run(["search", "a cat", "--library", str(folder)])
    assert code == 2 and "no library yet" in err and len(err.strip().splitlines()) == 1
    assert run(["index", str(folder), "--encoder", tiny_clip_spec])[0] == 0
    code, _, err = run(["search", "a cat", "--library", str(folder), "--encoder", "embedded"])
    assert code == 2 and "was indexed with open_clip:composer-tiny-clip:none" in err
    assert len(err.strip().splitlines()) == 1


def test_index_names_each_skipped_file_once_and_survives_a_symlink_loop(tmp_path, tiny_clip_spec, tiny_clip_config):
    """As a writer runs it (a real process, logging as configured there): a symlink loop does not
    crash the index, and every skipped file is named on exactly one line."""
    (tmp_path / "lib").mkdir()
    folder = make_folder(tmp_path / "lib")
    (folder / "a.jpg").symlink_to("b.jpg")
    (folder / "b.jpg").symlink_to("a.jpg")
    r = index_with_tiny_clip(folder, tiny_clip_config, tiny_clip_spec)
    skipped = [line for line in r.stderr.splitlines() if "skipped" in line and "added" not in line]
    for name in ("broken.jpg", "a.jpg", "b.jpg"):
        assert sum(f"{folder / name}:" in line for line in skipped) == 1, r.stderr
    assert "added 4, updated 0, removed 0, skipped 3" in r.stdout


def test_a_file_name_that_is_not_utf8_is_skipped_and_named_and_the_rest_indexed(tmp_path, tiny_clip_spec,
                                                                              tiny_clip_config):
    """Issue 17, case 4: a library file (and a folder) whose name is not UTF-8 crashed `index`
    with UnicodeEncodeError. As a writer runs it: a real process, exit 0, each named once."""
    (tmp_path / "lib").mkdir()
    folder = make_folder(tmp_path / "lib")
    raw = os.fsencode(folder)
    Image.new("RGB", (20, 20), (9, 9, 9)).save(raw + b"/caf\xe9.png")  # Latin-1 "café"
    os.mkdir(raw + b"/f\xf6lder")
    Image.new("RGB", (20, 20), (8, 8, 8)).save(raw + b"/f\xf6lder/inside.png")
    r = index_with_tiny_clip(folder, tiny_clip_config, tiny_clip_spec)
    skipped = [line for line in r.stderr.splitlines() if line.startswith("skipped")]
    assert sum("caf\ufffd.png" in line and "UTF-8" in line for line in skipped) == 1, r.stderr
    assert sum("f\ufffdlder" in line and "UTF-8" in line for line in skipped) == 1, r.stderr
    assert "added 4, updated 0, removed 0, skipped 3" in r.stdout


def test_scan_names_a_non_utf8_file_in_text_that_prints(tmp_path):
    from composer.retrieval.scan import scan_folder

    Image.new("RGB", (10, 10)).save(os.fsencode(tmp_path) + b"/\xff\xfe.jpg")
    Image.new("RGB", (10, 10)).save(tmp_path / "ok.jpg")
    found, skipped = scan_folder(tmp_path)
    assert [e.rel for e in found] == ["ok.jpg"]
    assert len(skipped) == 1 and "not valid UTF-8" in skipped[0].reason
    str(skipped[0]).encode("utf-8")  # printable on any UTF-8 terminal or log


def index_with_tiny_clip(folder, tiny_clip_config, tiny_clip_spec) -> subprocess.CompletedProcess:
    """`python -m composer index FOLDER` with the tiny open_clip model registered, in a child
    process; it must finish without a traceback."""
    script = ("import sys, open_clip; open_clip.add_model_config(sys.argv[1]); "
              "from composer.__main__ import main; sys.exit(main(sys.argv[2:]))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", script, str(tiny_clip_config), "index", str(folder),
                        "--encoder", tiny_clip_spec], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    return r
