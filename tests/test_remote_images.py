"""Photos over the OpenAI API, and the xcomposer dialect end to end through a server that speaks
like XComposer2 served by LMDeploy: it checks every request against the OpenAI vision schema
(content parts; each data URL decodes to a JPEG of the expected size, at most 1024 px) and
answers with the reference demo's answer forms, written WITHOUT the prefilled answer prefix a
chat API cannot give."""
from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from composer.article import Figure
from composer.images import decode_image_bytes
from composer.model.base import ModelError, Prompt, Sampling
from composer.model.remote import RemoteChatModel
from composer.model.remote_content import image_data_url, to_messages
from composer.model.remote_pool import RetryPolicy
from composer.model.remote_testing import ScriptedServer, closed_url, logprobs_reply, send_json, sse_reply
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest
from tests.fakes import MARKERS

ROOT = Path(__file__).resolve().parent.parent
ARTICLE = "\n".join([
    "第一段，咖啡馆七点开门。", "第二段，浓缩咖啡的油脂。", "第三段，窗台上的猫。", "第四段，熟客。", "第五段，结尾。",
])
RED, BLUE = (200, 30, 30), (30, 30, 200)
MODEL_ID = "internlm-xcomposer2-7b"  # as the README's LMDeploy command serves it (--model-name)


def upload(color, size):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return decode_image_bytes(buf.getvalue(), f"{color}.png")


def decode_data_url(url: str) -> Image.Image:
    head, _, data = url.partition(",")
    assert head == "data:image/jpeg;base64", head
    img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
    assert img.format == "JPEG"
    img.load()
    return img


def color_of(img: Image.Image) -> tuple[int, int, int]:
    r, g, b = img.convert("RGB").resize((1, 1)).getpixel((0, 0))
    return RED if r > b else BLUE


# --- encoding ------------------------------------------------------------------------------------
def test_images_become_jpeg_data_urls_at_most_1024_px():
    big = decode_data_url(image_data_url(Image.new("RGB", (3000, 2000), RED)))
    assert big.size == (1024, 683) and color_of(big) == RED
    tall = decode_data_url(image_data_url(Image.new("L", (500, 1500), 128)))
    assert tall.size == (341, 1024) and tall.mode == "RGB"
    small = decode_data_url(image_data_url(Image.new("RGB", (300, 200), BLUE)))
    assert small.size == (300, 200)
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # transparent becomes white, not black
    assert decode_data_url(image_data_url(clear)).getpixel((4, 4))[0] > 240


def test_interleaved_parts_keep_the_planners_order():
    red, blue = Image.new("RGB", (4, 4), RED), Image.new("RGB", (4, 4), BLUE)
    prompt = Prompt.user("Which fits?\n", "A. ", red, "\n", "B. ", blue, "\n", "Answer.", system="Be brief.")
    system, user = to_messages(prompt, "interleaved", note="\n\nBegin with: X")
    assert system == {"role": "system", "content": "Be brief."}
    kinds = [(p["type"], p.get("text")) for p in user["content"]]
    assert kinds == [("text", "Which fits?\nA. "), ("image_url", None), ("text", "\nB. "), ("image_url", None),
                     ("text", "\nAnswer."), ("text", "\n\nBegin with: X")]
    urls = [p["image_url"]["url"] for p in user["content"] if p["type"] == "image_url"]
    assert [color_of(decode_data_url(u)) for u in urls] == [RED, BLUE]


def test_lmdeploy_parts_mark_each_image_in_one_text_and_keep_writer_text_inert():
    red, blue = Image.new("RGB", (4, 4), RED), Image.new("RGB", (4, 4), BLUE)
    prompt = Prompt.user("上下文 <IMAGE_TOKEN> 字面\n", "A.", red, "\n", "B.", blue, "\n")
    (user,) = to_messages(prompt, "lmdeploy")
    text, *images = user["content"]
    assert text["type"] == "text" and [p["type"] for p in images] == ["image_url", "image_url"]
    assert text["text"].count("<IMAGE_TOKEN>") == 2
    assert text["text"].endswith("A.<IMAGE_TOKEN>\nB.<IMAGE_TOKEN>\n") and "<\u200bIMAGE_TOKEN> 字面" in text["text"]
    assert [color_of(decode_data_url(p["image_url"]["url"])) for p in images] == [RED, BLUE]
    # a prompt without images stays a plain string, which every server accepts
    assert to_messages(Prompt.user("纯文本"), "lmdeploy") == [{"role": "user", "content": "纯文本"}]


# --- an XComposer2-like server ------------------------------------------------------------------------
class XComposerLike:
    """Checks each request the way LMDeploy's XComposer2 wrapper reads it and answers in the
    xcomposer dialect. Errors found are answered with HTTP 400 and kept in `problems`."""

    def __init__(self, place_answer: str, captions: list[str], expected_sizes: dict):
        self.place_answer = place_answer
        self.captions = list(captions)
        self.expected_sizes = expected_sizes  # colour -> size after the ≤1024 px resize
        self.problems: list[str] = []
        self.seen: list[tuple[str, list[tuple[int, int, int]]]] = []  # (step, colours of the images shown)
        self.lock = threading.Lock()
        self.server = ScriptedServer(self.handle, models=(MODEL_ID,))

    def step_of(self, text: str) -> str:
        for step, marker in MARKERS["xcomposer"].items():
            if any(m in text for m in ((marker,) if isinstance(marker, str) else marker)):
                return step
        return "?"

    def check(self, body: dict) -> tuple[str, list[Image.Image]]:
        """The OpenAI vision schema, and LMDeploy's reading of it: one text part holding an
        <IMAGE_TOKEN> per image, image_url parts with data URLs of JPEGs."""
        assert body["model"] == MODEL_ID
        text, images = "", []
        for message in body["messages"]:
            assert message["role"] in ("system", "user", "assistant")
            content = message["content"]
            if isinstance(content, str):
                text += content
                continue
            assert isinstance(content, list) and content
            texts = [p for p in content if p["type"] == "text"]
            parts = [p for p in content if p["type"] == "image_url"]
            assert len(texts) + len(parts) == len(content), content
            assert len(texts) == 1 and set(texts[0]) == {"type", "text"}  # LMDeploy reads the first only
            assert texts[0]["text"].count("<IMAGE_TOKEN>") == len(parts)
            for p in parts:
                assert set(p) == {"type", "image_url"} and set(p["image_url"]) <= {"url", "detail"}
                img = decode_data_url(p["image_url"]["url"])
                assert max(img.size) <= 1024 and img.size == self.expected_sizes[color_of(img)], img.size
                images.append(img)
            text += texts[0]["text"]
        return text, images

    def handle(self, h, body):
        try:
            text, images = self.check(body)
        except AssertionError as exc:
            with self.lock:
                self.problems.append(repr(exc))
            return send_json(h, 400, {"error": {"message": f"bad request: {exc!r}"}})
        step = self.step_of(text)
        with self.lock:
            self.seen.append((step, [color_of(i) for i in images]))
        if body.get("logprobs"):  # XComposer2 asked to begin with 最合适的图是 repeats it, then the letter
            return logprobs_reply(h, [("B", -0.2), ("A", -1.6), ("最", -2.5)], echo=["最合适", "的", "图是"])
        answer = {"write": ARTICLE, "place": self.place_answer}.get(step)
        if step == "caption":
            with self.lock:
                answer = self.captions.pop(0)
        if answer is None:
            return send_json(h, 400, {"error": {"message": f"unexpected prompt {text[:60]!r}"}})
        for stop in body.get("stop", []):  # as LMDeploy applies stop words
            answer = answer.split(stop, 1)[0]
        sse_reply(h, [answer[i:i + 3] for i in range(0, len(answer), 3)])


@pytest.mark.parametrize("place_answer", [
    "<Seg2>, <Seg0>",                      # the reference demo's form, after its prefix
    "适合插入图像的行是<Seg2>，<Seg0>",       # the model writes the prefix it was asked for
    "第<Seg 2>行和第<Seg0>行适合插入图像。",   # no prefix, free wording
    "<Seg2>\n<Seg0>",
])
def test_xcomposer_dialect_composes_with_two_uploads_end_to_end(place_answer):
    red, blue = upload(RED, (2000, 1500)), upload(BLUE, (600, 800))
    captions = ['标题是"窗台上睡觉的猫"', '"一杯浓缩咖啡"。']  # with and without the echoed prefix
    xc = XComposerLike(place_answer, captions, {RED: (1024, 768), BLUE: (600, 800)})
    try:
        # the first server is down: the spec of the "done when", server A gone
        model = RemoteChatModel(f"{closed_url()},{xc.server.url}", retry=RetryPolicy(base_s=0.01, cap_s=0.05))
        assert (model.dialect, model.sees_images) == ("xcomposer", True)
        events = list(compose(ComposeRequest("咖啡馆的早晨", language="zh", image_count=2), model,
                              uploads=[red, blue], seed=1))
    finally:
        xc.server.close()
    assert xc.problems == []
    assert events[-1].kind == "done", [e.data for e in events if e.kind in ("warning", "fallback")]
    assert not [e for e in events if e.kind == "fallback"]
    article = events[-1].data["article"]
    assert [p.text for p in article.paragraphs][:2] == ["第一段，咖啡馆七点开门。", "第二段，浓缩咖啡的油脂。"]
    assert [f.caption for f in article.figures] == ["窗台上睡觉的猫", "一杯浓缩咖啡"]
    # the photos went to the model as images: both with the write prompt, in upload order, then
    # each choice shows its candidates (and the one already chosen, in its place)
    steps = [step for step, _ in xc.seen]
    assert steps == ["write", "place", "caption", "caption", "choose", "choose"]
    assert xc.seen[0][1] == [RED, BLUE] and xc.seen[4][1] == [RED, BLUE] and xc.seen[5][1] == [BLUE, RED]
    assert [f.image.sha256 for f in article.figures] == [blue.ref.sha256, red.ref.sha256]  # "B" scored best
    blocks = article.blocks
    assert [i for i, b in enumerate(blocks) if isinstance(b, Figure)] == [1, 4]  # after <Seg0> and <Seg2>


def test_a_server_that_refuses_images_says_so_and_nothing_is_retried():
    s = ScriptedServer(lambda h, b: send_json(h, 400, {"error": {"message": "model does not support image input"}}),
                       models=("internlm-xcomposer2-7b",))
    try:
        model = RemoteChatModel(s.url)
        with pytest.raises(ModelError, match="HTTP 400: model does not support image input"):
            list(model.stream(Prompt.user(Image.new("RGB", (8, 8)), "描述图片"), Sampling(max_new_tokens=8)))
        assert len(s.bodies) == 1
        assert re.search(r"<IMAGE_TOKEN>描述图片", s.bodies[0]["messages"][0]["content"][0]["text"])
    finally:
        s.close()



@pytest.mark.slow
def test_the_cli_composes_through_xcomposer_servers_with_the_first_one_down(tmp_path):
    """The issue's "done when": `python -m composer compose --model "openai:http://A,http://B#..."
    --images a b` with A down sends the photos as images and composes in the xcomposer dialect."""
    photos = []
    for name, color, size in [("a.png", RED, (2000, 1500)), ("b.png", BLUE, (600, 800))]:
        Image.new("RGB", size, color).save(tmp_path / name)
        photos.append(tmp_path / name)
    (tmp_path / "req.json").write_text(json.dumps({"title": "咖啡馆的早晨", "language": "zh", "image_count": 2}))
    xc = XComposerLike("<Seg2>, <Seg0>", ['窗台上睡觉的猫"', '一杯浓缩咖啡"'], {RED: (1024, 768), BLUE: (600, 800)})
    try:
        spec = f"openai:{closed_url()},{xc.server.url}#{MODEL_ID}"
        r = subprocess.run([sys.executable, "-m", "composer", "compose", "--request", str(tmp_path / "req.json"),
                            "--out", str(tmp_path / "out"), "--model", spec, "--images", *map(str, photos)],
                           cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                           timeout=600)
    finally:
        xc.server.close()
    assert r.returncode == 0, r.stderr
    assert xc.problems == [] and [step for step, _ in xc.seen][:2] == ["write", "place"]
    assert xc.seen[0][1] == [RED, BLUE]
    article = json.loads((tmp_path / "out/article.json").read_text())
    assert article["metadata"]["dialect"] == "xcomposer"
    assert [b["caption"] for b in article["blocks"] if "caption" in b] == ["窗台上睡觉的猫", "一杯浓缩咖啡"]
