"""Vision tower: CLIPVisionModel features at the native size, interpolated sizes, preprocessing."""
import pytest
import torch
from PIL import Image
from transformers import CLIPVisionModel

from composer.model.xcomposer2.config import VisionConfig
from composer.model.xcomposer2.testing import randomize
from composer.model.xcomposer2.vision import (
    VisionTower,
    clip_config,
    interpolate_position_embedding,
    preprocess,
)

TINY = VisionConfig(image_size=42, native_image_size=42, patch_size=14, hidden_size=32,
                    intermediate_size=64, num_layers=3, num_heads=2)


def reference_clip() -> CLIPVisionModel:
    torch.manual_seed(0)
    return randomize(CLIPVisionModel(clip_config(TINY)), seed=1).double().eval()


def tower_from(ref: CLIPVisionModel, cfg: VisionConfig) -> VisionTower:
    tower = VisionTower(cfg).double().eval()
    state = {k: v for k, v in ref.state_dict().items() if "post_layernorm" not in k}
    pos = next(k for k in state if k.endswith("position_embedding.weight"))
    state[pos] = interpolate_position_embedding(state[pos], cfg.grid)
    missing, unexpected = tower.vision_tower.load_state_dict(state, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing), (missing, unexpected)
    return tower


@pytest.mark.parametrize("select_layer", [-1, -2])
def test_native_size_equals_clip_hidden_states(select_layer):
    ref = reference_clip()
    cfg = VisionConfig(**{**TINY.__dict__, "select_layer": select_layer})
    tower = tower_from(ref, cfg)
    pixels = torch.randn(2, 3, 42, 42, dtype=torch.float64)
    expected = ref(pixels, output_hidden_states=True).hidden_states[select_layer][:, 1:]
    got = tower(pixels)
    assert got.shape == (2, 9, 32)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("size,tokens", [(28, 4), (56, 16), (70, 25)])
def test_interpolated_sizes_give_grid_squared_tokens(size, tokens):
    cfg = VisionConfig(**{**TINY.__dict__, "image_size": size})
    tower = tower_from(reference_clip(), cfg)
    # The input-size check of current transformers accepts the checkpoint's image size.
    assert tower(torch.randn(3, 3, size, size, dtype=torch.float64)).shape == (3, tokens, 32)
    assert cfg.tokens_per_image == tokens


def test_real_sizes():
    assert VisionConfig().tokens_per_image == 256  # internlm-xcomposer2-7b, 224 px
    assert VisionConfig(image_size=490).tokens_per_image == 1225  # the VL models


def test_interpolation_keeps_cls_and_identity_at_same_size():
    table = torch.randn(1 + 9, 8)
    assert torch.equal(interpolate_position_embedding(table, 3), table)
    out = interpolate_position_embedding(table, 2)
    assert out.shape == (5, 8) and torch.equal(out[0], table[0])
    # A constant grid stays constant under bicubic resizing.
    flat = torch.cat([torch.zeros(1, 8), torch.ones(9, 8)])
    torch.testing.assert_close(interpolate_position_embedding(flat, 5)[1:], torch.ones(25, 8))


def test_preprocess_resizes_and_normalises():
    cfg = VisionConfig(image_size=28)
    img = Image.new("RGB", (50, 20), (255, 0, 128))
    x = preprocess([img, img.convert("L")], cfg)
    assert x.shape == (2, 3, 28, 28)
    mean, std = torch.tensor(cfg.mean), torch.tensor(cfg.std)
    expected = (torch.tensor([255, 0, 128]) / 255.0 - mean) / std
    torch.testing.assert_close(x[0, :, 10, 10], expected, rtol=1e-5, atol=1e-5)
