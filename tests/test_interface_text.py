"""Status and flag lines in the writer's language, and the wait a queued job is told about."""
import ast
import re

import pytest

from composer import editor_session, services
from composer.app_testing import ROOT
from composer.article import Article, Figure, Paragraph
from composer.interface_text import LABELS_ZH, interface_language, say, wait_words
from composer.job_clock import JobClock

# English words that may stay in a Chinese line: file names and what the writer types.
KEPT = {"article", "json", "zip", "imagegen", "spec",  # (and command-line flags)
        "html", "docx", "pdf", "wordpress", "google", "docs", "word", "substack", "medium", "notion"}


def english_left(text: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z]{3,}", text) if w.lower() not in KEPT]


@pytest.mark.parametrize("header, language", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("zh-TW", "zh"), ("en-US,zh;q=0.5", "en"),
    ("en;q=0.3, zh-Hans;q=0.9", "zh"), ("", "en"), (None, "en"), ("fr-FR", "en"), ("zh;q=bogus,de", "en"),
])
def test_the_language_is_the_browsers_first_preference(header, language):
    assert interface_language(header) == language


def _sample(value: ast.FormattedValue) -> str:
    """What a {...} in a message holds when the editor says it."""
    call = value.value
    while isinstance(call, ast.BoolOp):  # `a or b`: what the first one holds
        call = call.values[0]
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
        if call.func.id == "wait_words":
            return wait_words(40)
        if call.func.id == "plural" and isinstance(call.args[1], ast.Constant):
            return services.plural(2, call.args[1].value)
    name = call.id if isinstance(call, ast.Name) else call.attr if isinstance(call, ast.Attribute) else ""
    if name == "note":  # an optional sentence, "" when there is none
        return ""
    if name == "unit":
        return "words"
    if name == "where":
        return "after paragraph 2"
    return "2"


def _status_literals(path) -> list[str]:
    """Every sentence the editor can put on its status line or in the pane: the string constants
    (and the constant parts of f-strings) it passes to Update, view, status_markdown, say, an
    edit's done message, plus its message tables."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []

    def literal(node) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append(node.value)
        elif isinstance(node, ast.JoinedStr):  # as it reads with a value in each {...}
            found.append("".join(v.value if isinstance(v, ast.Constant) else _sample(v) for v in node.values))
        elif isinstance(node, ast.IfExp):
            literal(node.body)
            literal(node.orelse)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"Update", "view", "status_markdown", "say", "EditError"} and node.args:
                literal(node.args[-1] if name == "view" else node.args[0])
            if name in {"plain", "edit"} and len(node.args) >= 4:
                literal(node.args[3] if name == "edit" else node.args[3])
        elif isinstance(node, ast.Return) and node.value is not None:
            literal(node.value)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for v in node.value.values:
                literal(v)
        elif isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.JoinedStr)):
            literal(node.value)
    # Sentences only: docstrings, names and keys are not said to a writer.
    return [s for s in found if re.search(r"[A-Za-z]{3,}", s)
            and not s.strip().endswith(('"""', ")")) and "\n" not in s and "`" not in s
            and "<" not in s and not s.endswith("-") and " " in s.strip()]


@pytest.mark.parametrize("source", ["app.py", "composer/editor_session.py", "composer/planner/edit.py"])
def test_every_status_line_the_editor_says_has_a_chinese_translation(source):
    literals = [s for s in _status_literals(ROOT / source) if s not in LABELS_ZH]  # labels: the browser's
    assert len(literals) > 15, literals  # the scan found the editor's messages
    missing = {s: english_left(say(s, "zh")) for s in literals if english_left(say(s, "zh"))}
    assert not missing, missing


def test_the_compose_summary_and_its_notes_are_translated_with_their_numbers():
    a = Article("T", (Paragraph("One."), Paragraph("Two."), Figure(None, "a cat")),
                {"claims": {"flags": [{"block": 0, "claim": "x"}, {"block": 1, "claim": "y"}]},
                 "fallbacks": [{"step": "place", "reason": "r"}, {"step": "caption", "reason": "r"}]})
    english = services.compose_summary(a)
    assert english.startswith("Done: 2 paragraphs, 0 pictures, 1 empty slot")
    chinese = say(english, "zh")
    assert chinese.startswith("完成：2 段，0 张图，1 个空位"), chinese
    assert "2 处说法不在你的素材中" in chinese and "1 条图注" in chinese
    assert not english_left(chinese), chinese


def test_the_writers_words_in_a_message_are_left_as_they_are():
    message = editor_session.STALE + ' Opened "Paragraph 3 & <b>Rewrite</b>.zip".'
    chinese = say(message, "zh")
    assert '"Paragraph 3 & <b>Rewrite</b>.zip"' in chinese or "Paragraph 3 & <b>Rewrite</b>.zip" in chinese
    assert say("Undone.", "en") == "Undone." and say("Undone.", "zh") == "已撤销。"


def test_wait_words_round_to_what_a_writer_can_use():
    assert wait_words(2) == "about 5 s" and wait_words(38) == "about 40 s" and wait_words(150) == "about 2 min"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_is_what_running_and_announced_jobs_have_left():
    clock = Clock()
    jobs = JobClock({"compose": 60.0, "edit": 15.0}, clock=clock)
    assert jobs.announce("a", "compose") is None  # nothing runs: a starts at once
    with jobs.job("a", "compose"):
        clock.now += 20
        assert jobs.announce("b", "edit") == pytest.approx(40.0)  # 60 s typical, 20 s gone
        assert jobs.announce("c", "edit") == pytest.approx(40.0 + 15.0)  # ...and b's edit ahead of c
        clock.now += 100
        assert jobs.announce("c", "edit") == pytest.approx(5.0 + 15.0)  # past its time: a little left
    assert jobs.typical("compose") == pytest.approx(120.0)  # measured, not guessed, from now on


def test_a_stopped_or_failed_job_is_no_measure_and_a_stale_click_expires():
    clock = Clock()
    jobs = JobClock({"edit": 15.0}, clock=clock)
    with jobs.job("a", "edit") as timing:
        clock.now += 1
        timing.keep = False  # stopped after a second
    with pytest.raises(RuntimeError):
        with jobs.job("a", "edit"):
            clock.now += 2
            raise RuntimeError("the model failed")
    assert jobs.typical("edit") == 15.0
    jobs.announce("gone", "edit")  # its tab closed before its job started
    clock.now += 601
    assert jobs.announce("b", "edit") is None
