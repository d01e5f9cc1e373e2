"""One call for the whole job (issue 10.8): a program composes through the editor's named
API endpoint with gradio_client, against a real server."""
import json
import zipfile
from pathlib import Path

import pytest

from composer.app_testing import ROOT, app_server

pytestmark = pytest.mark.slow
CAT = ROOT / "assets/library/cat.jpg"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with app_server(["--data", str(tmp_path_factory.mktemp("app-data"))],
                    env={"TMPDIR": str(tmp_path_factory.mktemp("app-tmp"))}) as srv:
        yield srv


def test_compose_endpoint_returns_the_article_and_its_bundle(server):
    from gradio_client import Client, handle_file

    client = Client(server.url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/compose", "/check"}, api["named_endpoints"].keys()
    request = {"title": "A cat at the window", "outline": ["The cat", "The window"], "length": 100,
               "image_count": 1}
    article_json, bundle = client.predict(json.dumps(request), [handle_file(str(CAT))], api_name="/compose")
    article = json.loads(Path(article_json).read_text(encoding="utf-8"))
    assert article["title"] == "A cat at the window"
    assert any(b["type"] == "paragraph" for b in article["blocks"])
    with zipfile.ZipFile(bundle) as z:
        # Every format (issue 21): the zip is the whole bundle.
        assert {"article.md", "article.html", "article.docx", "article.pdf", "article.wp.html",
                "article.json"} <= set(z.namelist())
        assert any(n.startswith("images/") for n in z.namelist())
    # The same article's check through /check: the lines `python -m composer check` prints.
    from composer.article import Article
    from composer.check import check_article, flag_lines

    lines = client.predict(handle_file(article_json), api_name="/check")
    assert lines == "\n".join(flag_lines(check_article(Article.from_dict(article))))


def test_compose_endpoint_refuses_a_bad_request_with_one_line(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server.url, verbose=False)
    with pytest.raises(AppError, match="title"):
        client.predict(json.dumps({"outline": ["x"]}), [], api_name="/compose")


def test_check_endpoint_flags_invented_claims(server, tmp_path):
    from gradio_client import Client, handle_file

    article = {"format": 1, "title": "T", "metadata": {"request": {"title": "T", "materials": "It opens at 7:00."}},
               "blocks": [{"type": "paragraph", "text": "It opens at 7:00 and sells 4,321 cups.", "kind": "paragraph",
                           "level": 0}]}
    path = tmp_path / "article.json"
    path.write_text(json.dumps(article), encoding="utf-8")
    lines = Client(server.url, verbose=False).predict(handle_file(str(path)), api_name="/check")
    assert lines == 'paragraph 1, sentence 1: "It opens at 7:00 and sells 4,321 cups." — 4,321 is not in the materials'



@pytest.mark.parametrize("request_text, words", [
    (json.dumps({"title": "t", "seed": "abc"}), '"seed" must be a whole number'),
    (json.dumps({"title": "t", "seed": [1]}), '"seed" must be a whole number'),
    (json.dumps([{"title": "t"}]), "must be a JSON object"),
    ('{"title": ' + "[" * 100_000, "nested too deeply"),
], ids=["seed-text", "seed-list", "a-list", "nested"])
def test_compose_endpoint_answers_a_malformed_request_in_one_plain_line(server, request_text, words):
    """Issue 17, case 9: these showed "invalid literal for int()", "'list' object has no attribute
    'get'" and "maximum recursion depth"."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server.url, verbose=False)
    with pytest.raises(AppError) as info:
        client.predict(request_text, [], api_name="/compose")
    message = str(info.value)
    assert words in message and "\n" not in message.strip()
    for raw in ("invalid literal", "attribute", "recursion"):
        assert raw not in message
