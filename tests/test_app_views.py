"""What app.py draws from text, without a browser."""
import pytest

pytest.importorskip("gradio")

from app import draft_html  # noqa: E402


def test_the_draft_reads_as_the_article_will_look_not_as_markdown():
    html = draft_html("## Why gardeners welcome ladybugs\n\nThey eat aphids <b>all</b> day.\n\nA second")
    assert "##" not in html
    assert "<h2>Why gardeners welcome ladybugs</h2>" in html
    assert "<p>They eat aphids &lt;b&gt;all&lt;/b&gt; day.</p>" in html  # model text is text
    assert html.count("<p>") == 2
