"""`python -m composer compose --imagegen` end to end: real process, the real embedded model,
no photos and no library, against the loopback engine (both documented APIs; no text-to-image
weights can run here)."""
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image

from composer.imagegen.provenance import DIGITAL_SOURCE_TYPE, LABEL
from composer.imagegen.testing import LoopbackImageServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "assets/examples/space-race-five-objects.json"


def compose(out, spec, *extra):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "composer", "compose", "--request", str(EXAMPLE), "--out", str(out),
                           "--imagegen", spec, "--quiet", "--image-count", "2", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_every_slot_is_filled_labelled_and_carries_its_provenance(tmp_path):
    with LoopbackImageServer() as engine:
        r = compose(tmp_path / "out", f"openai-images:{engine.url}?size=256x192")
        again = compose(tmp_path / "again", f"openai-images:{engine.url}?size=256x192")
    assert r.returncode == 0 and again.returncode == 0, r.stderr
    assert not engine.refused
    half = len(engine.bodies) // 2
    assert half == 2 and engine.bodies[:half] == engine.bodies[half:]  # the same seed: the same requests
    article = json.loads((tmp_path / "out" / "article.json").read_text())
    figures = [b for b in article["blocks"] if b["type"] == "figure"]
    assert len(figures) == 2 and all(f["image"] and f["source"] == "generated" for f in figures)
    for f, (_, body) in zip(figures, engine.bodies):
        g = f["generated"]
        assert g["engine"] == "openai-images" and g["model"] == "loopback-sd-turbo"
        assert (g["prompt"], g["seed"], f"{g['width']}x{g['height']}") == (body["prompt"], body["seed"], "256x192")
        jpeg = (tmp_path / "out" / f["image"]["path"]).read_bytes()
        assert DIGITAL_SOURCE_TYPE in Image.open(io.BytesIO(jpeg)).info["xmp"].decode()
    with zipfile.ZipFile(tmp_path / "out" / "article.zip") as z:
        for name in (n for n in z.namelist() if n.startswith("images/")):
            assert DIGITAL_SOURCE_TYPE in Image.open(io.BytesIO(z.read(name))).info["xmp"].decode()
    md = (tmp_path / "out" / "article.md").read_text()
    assert md.count(f"*{LABEL}: ") == 2 and md.count("digital_source_type:") == 2
    assert "(generated, seed" in r.stderr


def test_an_engine_that_dies_mid_article_leaves_the_rest_and_the_cli_says_which(tmp_path):
    with LoopbackImageServer(die_after=1) as engine:
        r = compose(tmp_path / "out", f"a1111:{engine.url}?size=128x128")
    assert r.returncode == 0, r.stderr
    article = json.loads((tmp_path / "out" / "article.json").read_text())
    figures = [b for b in article["blocks"] if b["type"] == "figure"]
    assert [f["source"] for f in figures] == ["generated", "none"]
    assert "no picture was generated after paragraph 2: no server is available" in r.stderr
    assert "1 picture could not be generated (after paragraph 2:" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_bad_spec_is_one_line_before_anything_runs(tmp_path):
    r = compose(tmp_path / "out", "a1111:http://127.0.0.1:1?size=big")
    assert r.returncode == 2 and not (tmp_path / "out").exists()
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --imagegen a1111:") and "WIDTHxHEIGHT" in last and "Traceback" not in r.stderr
