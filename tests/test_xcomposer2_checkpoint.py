"""Checkpoint loading by official key names: shards + index, .bin, strictness, clear errors."""
import json

import pytest
import torch

from composer.model.base import ModelError
from composer.model.xcomposer2.checkpoint import CheckpointError, load_pretrained, resolve
from composer.model.xcomposer2.model import XComposer2
from composer.model.xcomposer2.testing import official_state_dict, save_checkpoint, tiny_model
from composer.model.xcomposer2.vision import interpolate_position_embedding


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=3)


def logits(m: XComposer2, ids: torch.Tensor) -> torch.Tensor:
    im = torch.zeros_like(ids, dtype=torch.bool)
    im[:, 2:5] = True
    return m.logits(m(m.model.tok_embeddings(ids), im_mask=im))


def test_official_key_names(model):
    keys = set(official_state_dict(model))
    for key in [
        "model.tok_embeddings.weight", "model.norm.weight", "output.weight",
        "model.layers.0.attention.wqkv.weight", "model.layers.0.attention.wqkv.Plora_A.weight",
        "model.layers.1.attention.wo.Plora_B.weight", "model.layers.0.feed_forward.w2.Plora_A.weight",
        "model.layers.0.attention_norm.weight", "model.layers.0.ffn_norm.weight",
        "vit.vision_tower.vision_model.embeddings.position_embedding.weight",
        "vit.vision_tower.vision_model.encoder.layers.1.mlp.fc2.bias",
        "vision_proj.0.weight", "vision_proj.2.bias",
    ]:
        assert key in keys, key
    assert not any("post_layernorm" in k for k in keys)


@pytest.mark.parametrize("fmt,shards", [("safetensors", 3), ("safetensors", 1), ("bin", 2), ("bin", 1)])
def test_round_trip(tmp_path, model, fmt, shards):
    folder = save_checkpoint(model, tmp_path / "ckpt", fmt=fmt, shards=shards)
    index = list(folder.glob("*.index.json"))
    assert len(index) == (1 if shards > 1 else 0)
    loaded = load_pretrained(folder, dtype=torch.float32, device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    assert all(b.device.type == "cpu" for b in loaded.buffers())
    ids = torch.randint(0, 400, (2, 9))
    assert torch.equal(logits(loaded, ids), logits(model, ids))
    pixels = torch.randn(1, 3, 28, 28)
    assert torch.equal(loaded.vit(pixels), model.vit(pixels))


def test_bf16_load(tmp_path, model):
    loaded = load_pretrained(save_checkpoint(model, tmp_path / "c"), dtype="bf16", device="cpu")
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}


def test_native_position_table_is_interpolated(tmp_path, model):
    state = official_state_dict(model)
    key = "vit.vision_tower.vision_model.embeddings.position_embedding.weight"
    native = torch.randn(1 + 3 * 3, 32)  # the tiny preset's native 42 px / 14 = 3x3 grid
    state[key] = native
    loaded = load_pretrained(save_checkpoint(model, tmp_path / "c", state=state), device="cpu")
    got = loaded.vit.clip_body.embeddings.position_embedding.weight
    assert torch.equal(got, interpolate_position_embedding(native, 2))


def test_missing_and_unexpected_keys_are_listed(tmp_path, model):
    state = official_state_dict(model)
    del state["model.layers.1.feed_forward.w3.Plora_B.weight"]
    state["model.layers.9.attention.wqkv.weight"] = torch.zeros(2, 2)
    folder = save_checkpoint(model, tmp_path / "c", state=state)
    with pytest.raises(CheckpointError) as err:
        load_pretrained(folder, device="cpu")
    msg = str(err.value)
    assert "missing keys: model.layers.1.feed_forward.w3.Plora_B.weight" in msg
    assert "unexpected keys: model.layers.9.attention.wqkv.weight" in msg
    assert isinstance(err.value, ModelError)


def test_shape_mismatch_is_reported(tmp_path, model):
    state = official_state_dict(model)
    state["output.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError, match="output.weight: file"):
        load_pretrained(save_checkpoint(model, tmp_path / "c", state=state), device="cpu")


def test_ignorable_buffers_are_accepted(tmp_path, model):
    state = official_state_dict(model)
    state["vit.vision_tower.vision_model.embeddings.position_ids"] = torch.arange(5)[None]
    state["vit.vision_tower.vision_model.post_layernorm.weight"] = torch.ones(32)
    load_pretrained(save_checkpoint(model, tmp_path / "c", state=state), device="cpu")


def test_missing_model_gives_model_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        resolve("nobody-here/no-such-model-xyz")
    with pytest.raises(ModelError, match="not a folder"):
        resolve(str(tmp_path / "nope" / "deeper"))
    with pytest.raises(ModelError, match="config.json"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(tiny_model().config.to_hf_dict()))
    with pytest.raises(ModelError, match="no weights"):
        load_pretrained(tmp_path)
