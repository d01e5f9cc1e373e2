import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composer.article import Article, Candidate, Figure, ImageRef, Paragraph

ref = st.builds(ImageRef, sha256=st.text("0123456789abcdef", min_size=64, max_size=64), path=st.text(max_size=40),
                width=st.integers(0, 10000), height=st.integers(0, 10000))
para = st.builds(Paragraph, text=st.text(), kind=st.sampled_from(["paragraph", "heading"]), level=st.integers(0, 6))
fig = st.builds(Figure, image=st.none() | ref, caption=st.text(), alt=st.text(),
                source=st.sampled_from(["upload", "library", "none"]),
                candidates=st.lists(st.builds(Candidate, image=ref, score=st.floats(-1, 1)), max_size=3).map(tuple))
articles = st.builds(Article, title=st.text(min_size=1), blocks=st.lists(para | fig, max_size=8).map(tuple),
                     metadata=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=3))


@given(articles)
def test_json_round_trip_is_lossless(article):
    again = Article.from_json(article.to_json())
    assert again == article
    assert Article.from_dict(json.loads(json.dumps(article.to_dict()))) == article


def test_views_and_unknown_block_type():
    a = Article("T", (Paragraph("x"), Figure(None, "c"), Paragraph("H", "heading", 2)))
    assert [p.text for p in a.paragraphs] == ["x", "H"]
    assert len(a.figures) == 1
    bad = a.to_dict()
    bad["blocks"][0]["type"] = "video"
    try:
        Article.from_dict(bad)
    except ValueError as exc:
        assert "video" in str(exc)
    else:
        raise AssertionError("unknown block type accepted")


# --- what one article may hold (issue 17, case 8) ------------------------------------------------
def test_an_article_with_more_blocks_than_the_cap_is_refused_in_one_line_before_it_is_built():
    from composer.article import MAX_BLOCKS

    # Every block is one no reader accepts: were any built before the count was checked, the
    # error would be about the block, not the cap.
    data = {"title": "Huge", "blocks": [{"type": "no such block"}] * 100_000}
    with pytest.raises(ValueError) as info:
        Article.from_dict(data)
    assert f"at most {MAX_BLOCKS} blocks" in str(info.value) and "100000" in str(info.value)
    with pytest.raises(ValueError) as info:  # (the same blocks under the cap are read, and refused)
        Article.from_dict({"title": "Small", "blocks": data["blocks"][:3]})
    assert "unknown block type" in str(info.value)
    ok = {"title": "Fits", "blocks": [{"type": "paragraph", "text": "x"}] * MAX_BLOCKS}
    assert len(Article.from_dict(ok).blocks) == MAX_BLOCKS


def test_an_article_with_more_text_than_the_cap_is_refused():
    from composer.article import MAX_TEXT_CHARS

    data = {"title": "Long", "blocks": [{"type": "paragraph", "text": "y" * (MAX_TEXT_CHARS + 1)}]}
    with pytest.raises(ValueError, match="characters"):
        Article.from_dict(data)


def test_the_editor_refuses_to_open_an_article_over_the_cap(tmp_path):
    import json

    from composer.editor_session import EditorSession

    path = tmp_path / "article.json"
    path.write_text(json.dumps({"title": "Huge", "blocks": [{"type": "paragraph", "text": "x"}] * 2000}))
    s = EditorSession()
    message = s.open_file(path)
    assert message.startswith("⚠️ article.json: cannot be opened") and "blocks" in message
    assert s.article is None


def test_an_article_the_editor_grew_past_the_cap_is_not_lost(tmp_path):
    """The cap is for what comes from elsewhere: the app's own saved versions always load."""
    from composer.article import MAX_BLOCKS
    from composer.planner.history import History
    from composer.workspace import Workspace

    ws = Workspace(tmp_path)
    aid = ws.create()
    big = Article("Grown", tuple(Paragraph(f"p{i}") for i in range(MAX_BLOCKS + 5)))
    ws.save(aid, History(big))
    assert Workspace(tmp_path).load(aid).current == big


def test_one_numbering_a_writer_can_count_on_screen():
    """Issue 18, case 7: body paragraphs are numbered from 1 as the writer counts them (headings
    are named by their words, not counted), a picture by the paragraph it follows."""
    from composer.article import Figure, paragraph_label

    blocks = (Paragraph("Why ladybugs", "heading", 2), Paragraph("One."), Figure(None, "c"),
              Paragraph("Where they live", "heading", 2), Paragraph("Two."), Paragraph("Three."))
    assert [paragraph_label(blocks, i) for i in range(len(blocks))] == [
        'heading "Why ladybugs"', "paragraph 1", "after paragraph 1", 'heading "Where they live"',
        "paragraph 2", "paragraph 3"]
    assert paragraph_label((Figure(None, "c"), Paragraph("One.")), 0) == "before paragraph 1"
