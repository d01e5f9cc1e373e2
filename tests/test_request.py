"""The request boundary: what a writer sends is checked and cleaned before anything uses it."""
import json

import pytest

from composer.planner.request import ComposeRequest, RequestError, load_request

CONTROLS = "".join(chr(c) for c in [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0)])


def test_control_characters_are_stripped_from_every_text_field():
    dirty = f"Caf\x00é\x1b[31m red\x07{CONTROLS} end"
    req = ComposeRequest.from_dict({"title": dirty, "outline": [dirty, "- " + dirty],
                                    "materials": dirty + "\nline 2\tcol", "style": dirty})
    clean = "Caf\u00e9[31m red end"
    assert req.title == clean
    assert req.outline == (clean, clean)
    assert req.materials == clean + "\nline 2\tcol"  # newline and tab are kept
    assert req.style == clean
    for text in (req.title, *req.outline, req.materials, req.style):
        assert not any(ch in CONTROLS for ch in text)


def test_carriage_returns_become_newlines_not_joined_lines():
    req = ComposeRequest.from_dict({"title": "t", "materials": "one\r\ntwo\rthree"})
    assert req.materials == "one\ntwo\nthree"


def test_a_title_of_only_control_characters_is_missing():
    with pytest.raises(RequestError, match="title"):
        ComposeRequest.from_dict({"title": "\x00\x1b\x07"})


def test_deep_nesting_is_a_request_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    with pytest.raises(RequestError, match="nested too deeply") as info:
        load_request(path)
    assert str(path) in str(info.value)
    path.write_text(json.dumps({"title": "t", "outline": [[[["x"]]]]}))
    with pytest.raises(RequestError, match="outline"):
        load_request(path)


# --- the /compose API's request text (issue 17, case 9) ------------------------------------------
@pytest.mark.parametrize("seed", ["abc", [1], {"a": 1}, -1, 2**40, 1.5, True, "1e3", float("nan")])
def test_a_bad_seed_is_one_plain_line(seed):
    from composer.planner.request import request_from_json

    with pytest.raises(RequestError) as info:
        request_from_json(json.dumps({"title": "t", "seed": seed}))
    message = str(info.value)
    assert message.startswith('"seed" must be a whole number') and "\n" not in message
    assert "invalid literal" not in message and "int()" not in message


@pytest.mark.parametrize("seed, expected", [(None, 0), (0, 0), (7, 7), ("42", 42), (3.0, 3), ("", 0)])
def test_a_good_seed_is_taken(seed, expected):
    from composer.planner.request import request_from_json

    fields, got = request_from_json(json.dumps({"title": "t", "seed": seed}))
    assert got == expected and fields["title"] == "t"


@pytest.mark.parametrize("text, words", [
    ('[{"title": "t"}]', "must be a JSON object"),
    ("[" * 100_000, "nested too deeply"),
    ('{"title": ' + "[" * 100_000, "nested too deeply"),
    ("", "not JSON"),
    ("{oops", "not JSON"),
], ids=["list", "deep-list", "deep-field", "empty", "broken"])
def test_a_request_that_is_not_a_json_object_is_one_plain_line(text, words):
    from composer.planner.request import request_from_json

    with pytest.raises(RequestError) as info:
        request_from_json(text)
    message = str(info.value)
    assert words in message and "\n" not in message and len(message) < 200
    assert "attribute" not in message and "recursion" not in message
