"""The image engines' client against the loopback engine (composer/imagegen/testing.py), which
speaks both documented APIs and refuses what the real engines refuse."""
import io

import pytest
from PIL import Image

from composer.imagegen import ImageGenError, Size, load_imagegen, parse_imagegen_spec
from composer.imagegen.testing import OPENAI_FIELDS, LoopbackImageServer, Refused, check_fields
from composer.model.remote_pool import RetryPolicy
from composer.model.remote_testing import closed_url

QUICK = RetryPolicy(attempts=3, total_s=2.0, base_s=0.01, cap_s=0.05)


@pytest.fixture
def engine():
    with LoopbackImageServer() as server:
        yield server


def test_spec_parsing_follows_the_chat_specs_rules():
    spec = parse_imagegen_spec("openai-images:http://a:1/v1,http://b:2#sd-turbo?size=512x512&steps=4")
    assert spec.engine == "openai-images" and spec.urls == ("http://a:1", "http://b:2")
    assert spec.model == "sd-turbo" and spec.size == Size(512, 512) and spec.steps == 4
    assert parse_imagegen_spec("a1111:http://h:7860?cfg=1.5").cfg_scale == 1.5
    for bad, words in [("dalle:http://a", "unknown image engine"), ("a1111:", "names no server"),
                       ("a1111:ftp://x", "is not a URL"), ("a1111:http://a?size=700x13", "multiple of 8"),
                       ("a1111:http://a?steps=many", "must be a number"),
                       ("a1111:http://a?colour=red", "unknown option"),
                       ("a1111:http://a,http://a", "twice"), ("a1111:http://a?steps=0", "from 1 to")]:
        with pytest.raises(ImageGenError, match=words):
            parse_imagegen_spec(bad)


def test_openai_images_request_is_exactly_the_documented_one(engine):
    gen = load_imagegen(f"openai-images:{engine.url}#sd-turbo?steps=2&size=256x128", retry=QUICK, api_key="k")
    [png] = gen.generate("a red rocket on a launch pad", gen.size, seed=7, negative_prompt="text, watermark")
    path, body = engine.bodies[-1]
    assert path == "/v1/images/generations"
    assert body == {"prompt": "a red rocket on a launch pad", "n": 1, "size": "256x128", "response_format": "b64_json",
                    "seed": 7, "model": "sd-turbo", "negative_prompt": "text, watermark", "num_inference_steps": 2}
    assert engine.auth[-1] == "Bearer k" and not engine.refused
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == (256, 128)


def test_a1111_request_is_exactly_the_documented_one_and_names_the_model(engine):
    gen = load_imagegen(f"a1111:{engine.url}?size=320x240", retry=QUICK)
    pictures = gen.generate("a lunar module", Size(320, 240), seed=3, n=2, negative_prompt="text")
    path, body = engine.bodies[-1]
    assert path == "/sdapi/v1/txt2img" and not engine.refused
    assert body == {"prompt": "a lunar module", "negative_prompt": "text", "seed": 3, "width": 320, "height": 240,
                    "batch_size": 2, "n_iter": 1, "save_images": False, "send_images": True}
    assert len(pictures) == 2 and pictures[0] != pictures[1]
    assert gen.model == "loopback-sd-turbo"  # read from the answer's info


def test_same_prompt_and_seed_give_the_same_picture_and_another_seed_another(engine):
    gen = load_imagegen(f"openai-images:{engine.url}?size=128x128", retry=QUICK)
    a = gen.generate("Sputnik", gen.size, seed=1)
    assert gen.generate("Sputnik", gen.size, seed=1) == a
    assert gen.generate("Sputnik", gen.size, seed=2) != a
    assert gen.generate("Vostok", gen.size, seed=1) != a


def test_the_loopback_engine_refuses_what_engines_refuse():
    with pytest.raises(Refused, match="unknown field"):
        check_fields({"prompt": "x", "steps": 4}, OPENAI_FIELDS, ("prompt",))
    with pytest.raises(Refused, match="invalid value for n"):
        check_fields({"prompt": "x", "n": True}, OPENAI_FIELDS, ("prompt",))
    with pytest.raises(Refused, match="field required"):
        check_fields({"n": 1}, OPENAI_FIELDS, ("prompt",))


def test_a_refused_request_is_one_line_naming_the_server(engine):
    gen = load_imagegen(f"openai-images:{engine.url}", retry=QUICK)
    with pytest.raises(ImageGenError, match="answered HTTP 400"):
        gen.generate("x", Size(4096, 64), seed=1)  # past the loopback's range, as an engine's
    with pytest.raises(ImageGenError, match="prompt is empty"):
        gen.generate("  ", gen.size, seed=1)


def test_a_server_that_is_down_is_skipped_for_the_next_one(engine):
    gen = load_imagegen(f"openai-images:{closed_url()},{engine.url}?size=64x64", retry=QUICK)
    assert gen.workers == 2
    for seed in range(3):
        assert gen.generate("a capsule", gen.size, seed=seed)
    assert len(engine.bodies) == 3
    assert gen.model == "loopback-sd-turbo"  # the first model the live server lists, for the provenance


def test_an_engine_that_dies_gives_a_clear_error():
    with LoopbackImageServer(die_after=1) as server:
        gen = load_imagegen(f"a1111:{server.url}?size=64x64", retry=QUICK)
        gen.generate("first", gen.size, seed=1)
        with pytest.raises(ImageGenError, match="no server is available") as err:
            gen.generate("second", gen.size, seed=1)
        assert server.url in str(err.value) and "\n" not in str(err.value)


def test_an_answer_that_is_not_a_picture_is_refused():
    from composer.model.remote_testing import ScriptedServer, send_json

    with ScriptedServer(lambda h, b: send_json(h, 200, {"data": [{"b64_json": "aGVsbG8="}]})) as s:
        gen = load_imagegen(f"openai-images:{s.url}", retry=QUICK)
        with pytest.raises(ImageGenError, match="cannot be used"):
            gen.generate("x", gen.size, seed=1)
    with ScriptedServer(lambda h, b: send_json(h, 200, {"data": []})) as s:
        with pytest.raises(ImageGenError, match="sent 0 pictures for 1"):
            load_imagegen(f"openai-images:{s.url}", retry=QUICK).generate("x", Size(64, 64), seed=1)
