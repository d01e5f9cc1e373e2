import json

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
