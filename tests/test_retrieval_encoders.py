"""Encoders: spec strings, the open_clip wrapper, and the offline embedded encoder on real photos."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from composer.retrieval import MULTILINGUAL_OPEN_CLIP, ImageLibrary, LibraryError, load_encoder
from composer.retrieval.registry import parse_open_clip_spec

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "library"


def test_open_clip_specs_parse():
    assert parse_open_clip_spec("open_clip:ViT-B-32") == ("ViT-B-32", None)
    assert parse_open_clip_spec("open_clip:ViT-B-32:laion2b_s34b_b79k") == ("ViT-B-32", "laion2b_s34b_b79k")
    assert parse_open_clip_spec("open_clip:ViT-B-32:/w/clip.bin") == ("ViT-B-32", "/w/clip.bin")
    assert parse_open_clip_spec("open_clip:hf-hub:org/model") == ("hf-hub:org/model", None)


def test_multilingual_model_is_one_open_clip_knows():
    import open_clip

    model, tag = parse_open_clip_spec(MULTILINGUAL_OPEN_CLIP)
    assert model in open_clip.list_models()
    assert tag in open_clip.list_pretrained_tags_by_model(model)


@pytest.mark.parametrize("spec", ["clip", "open_clip:", "open_clip:no-such-model:none"])
def test_bad_specs_are_library_errors(spec):
    with pytest.raises(LibraryError):
        load_encoder(spec)


def test_tiny_clip_outputs_normalised_float32(tiny_clip):
    images = [Image.new("RGB", (50, 30), c) for c in ("red", "blue", "white")]
    vi = tiny_clip.encode_images(images)
    vt = tiny_clip.encode_texts(["a cat", "一只猫"])
    assert vi.dtype == np.float32 and vi.shape == (3, tiny_clip.dim) == (3, 32)
    assert vt.dtype == np.float32 and vt.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(vi, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vt, axis=1), 1, rtol=1e-5)
    assert not np.allclose(vi[0], vi[1])
    assert tiny_clip.name == "open_clip:composer-tiny-clip:none"


def test_random_weights_are_the_same_in_every_build(tiny_clip, tiny_clip_spec):
    again = load_encoder(tiny_clip_spec)
    image = [Image.new("RGB", (40, 40), "green")]
    np.testing.assert_allclose(again.encode_images(image), tiny_clip.encode_images(image), rtol=1e-6)


def test_local_weights_file_is_named_by_its_content(tmp_path, tiny_clip, tiny_clip_config):
    import torch

    weights = tmp_path / "tiny.pt"
    torch.save(tiny_clip.model.state_dict(), weights)
    enc = load_encoder(f"open_clip:composer-tiny-clip:{weights}")
    assert enc.name.startswith("open_clip:composer-tiny-clip:sha256-") and str(weights) in enc.spec
    image = [Image.new("RGB", (40, 40), "green")]
    np.testing.assert_allclose(enc.encode_images(image), tiny_clip.encode_images(image), rtol=1e-5)


def test_hub_weights_offline_give_a_clear_error():
    with pytest.raises(LibraryError, match="cannot load open_clip ViT-B-32 weights 'laion2b_s34b_b79k'"):
        load_encoder("open_clip:ViT-B-32:laion2b_s34b_b79k")


# --- embedded encoder on real photos ------------------------------------------------------
CAPTIONS = {
    "a cat": "cat.jpg",
    "a rocket launch": "rocket.jpg",
    "a cup of coffee": "coffee.jpg",
}


def test_embedded_classifier_sees_the_cat(embedded_encoder):
    from composer.retrieval.embedded import imagenet_class_names

    pixels = embedded_encoder.preprocess(Image.open(ASSETS / "cat.jpg").convert("RGB"))[None]
    probs = embedded_encoder.class_probabilities(pixels)[0]
    names = imagenet_class_names()
    top3 = [names[i] for i in np.argsort(-probs)[:3]]
    assert {"tabby", "tiger cat", "Egyptian cat"} & set(top3), top3
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)


def test_embedded_ranks_the_matching_photo_first(embedded_encoder, tmp_path):
    with ImageLibrary(ASSETS, db=tmp_path / "assets.sqlite", encoder=embedded_encoder) as lib:
        report = lib.sync()
        assert report.skipped == [] and report.added >= 9
        for caption, expected in CAPTIONS.items():
            hits = lib.search(caption, k=3)
            assert Path(hits[0][0].path).name == expected, (caption, hits)


def test_embedded_scores_a_matching_caption_above_a_wrong_one(embedded_encoder):
    files = sorted(set(CAPTIONS.values()))
    images = embedded_encoder.encode_images([Image.open(ASSETS / f).convert("RGB") for f in files])
    texts = embedded_encoder.encode_texts(list(CAPTIONS))
    assert images.shape == (3, embedded_encoder.dim) and images.dtype == np.float32
    scores = texts @ images.T  # caption x image
    for row, (caption, expected) in enumerate(CAPTIONS.items()):
        right = files.index(expected)
        for col in range(len(files)):
            if col != right:
                assert scores[row, right] > scores[row, col], (caption, files[col])


@pytest.mark.parametrize("size", [(500, 334), (334, 500), (301, 301), (640, 200), (100, 80)])
def test_fast_preprocess_matches_torchvision(size):
    import torchvision.transforms as T

    from composer.retrieval.preprocess import CenterCropTransform

    mean, std = (0.48, 0.46, 0.41), (0.27, 0.26, 0.28)
    fast = CenterCropTransform(resize=256, crop=224, mean=mean, std=std, interpolation="bicubic")
    reference = T.Compose([
        T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
        T.ToTensor(), T.Normalize(mean, std),
    ])
    image = Image.open(ASSETS / "coffee.jpg").convert("RGB").resize(size)
    ours, theirs = fast(image), reference(image)
    assert ours.shape == theirs.shape == (3, 224, 224) and ours.dtype == torch_float32()
    # Same pixels up to two grey levels at a few crop-edge pixels (we resample only the crop box).
    assert float((ours - theirs).abs().max()) <= 2.01 / 255 / min(std)
    assert float((ours - theirs).abs().mean()) < 0.01  # a crop one pixel off gives ~0.13


def torch_float32():
    import torch

    return torch.float32
