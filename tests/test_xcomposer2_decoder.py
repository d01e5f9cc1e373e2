"""The InternLM2 decoder: equal to transformers' Llama on text, KV cache, left padding."""
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from composer.model.xcomposer2.config import DecoderConfig, XComposer2Config, tiny_config
from composer.model.xcomposer2.testing import tiny_model


def llama_from(model) -> LlamaForCausalLM:
    """A LlamaForCausalLM with our weights: wqkv split into q/k/v in the official layout."""
    cfg = model.config.decoder
    rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling_type == "dynamic":
        rope = {"rope_type": "dynamic", "rope_theta": cfg.rope_theta, "factor": cfg.rope_scaling_factor}
    llama_cfg = LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        rms_norm_eps=cfg.rms_norm_eps,
        max_position_embeddings=cfg.max_position_embeddings,
        rope_parameters=rope,
        attention_bias=False,
        tie_word_embeddings=False,
    )
    llama = LlamaForCausalLM(llama_cfg).to(torch.float64).eval()
    g, hd, kvh = cfg.kv_groups, cfg.head_dim, cfg.num_kv_heads
    sd = {"model.embed_tokens.weight": model.model.tok_embeddings.weight, "model.norm.weight": model.model.norm.weight,
          "lm_head.weight": model.output.weight}
    for i, layer in enumerate(model.model.layers):
        w = layer.attention.wqkv.weight.view(kvh, g + 2, hd, cfg.hidden_size)
        p = f"model.layers.{i}."
        sd[p + "self_attn.q_proj.weight"] = w[:, :g].reshape(-1, cfg.hidden_size)
        sd[p + "self_attn.k_proj.weight"] = w[:, g].reshape(-1, cfg.hidden_size)
        sd[p + "self_attn.v_proj.weight"] = w[:, g + 1].reshape(-1, cfg.hidden_size)
        sd[p + "self_attn.o_proj.weight"] = layer.attention.wo.weight
        sd[p + "mlp.gate_proj.weight"] = layer.feed_forward.w1.weight
        sd[p + "mlp.up_proj.weight"] = layer.feed_forward.w3.weight
        sd[p + "mlp.down_proj.weight"] = layer.feed_forward.w2.weight
        sd[p + "input_layernorm.weight"] = layer.attention_norm.weight
        sd[p + "post_attention_layernorm.weight"] = layer.ffn_norm.weight
    missing, unexpected = llama.load_state_dict({k: v.detach() for k, v in sd.items()}, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)
    return llama


def full_logits(model, ids, im_mask=None):
    return model.logits(model(model.model.tok_embeddings(ids), im_mask=im_mask))


@pytest.mark.parametrize(
    "kv_heads,dynamic",
    [(2, False), (4, False), (1, True)],
    ids=["gqa", "mha", "mqa-dynamic-ntk"],
)
def test_text_path_equals_llama(kv_heads, dynamic):
    base = tiny_config().decoder
    dec = DecoderConfig(**{**base.__dict__, "num_kv_heads": kv_heads,
                           "rope_scaling_type": "dynamic" if dynamic else None,
                           "rope_scaling_factor": 2.0, "max_position_embeddings": 16 if dynamic else 512})
    model = tiny_model(XComposer2Config(decoder=dec, vision=tiny_config().vision)).double()
    llama = llama_from(model)
    ids = torch.randint(0, dec.vocab_size, (2, 24))
    ours = full_logits(model, ids, im_mask=torch.zeros(2, 24, dtype=torch.bool))
    theirs = llama(input_ids=ids).logits
    # transformers computes the NTK base in fp32 arithmetic, we in Python floats: ~1e-7 apart. A
    # wrong scaling rule would be off by O(1) (the base doubles here: 24 positions > 16 trained).
    tol = 1e-6 if dynamic else 1e-9
    torch.testing.assert_close(ours, theirs, rtol=tol, atol=tol)


def test_image_mask_changes_only_image_positions_and_after():
    model = tiny_model().double()
    ids = torch.randint(0, 400, (1, 12))
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, 5:8] = True
    text = full_logits(model, ids)
    mixed = full_logits(model, ids, im_mask=mask)
    torch.testing.assert_close(mixed[:, :5], text[:, :5], rtol=0, atol=0)  # causal: earlier rows untouched
    assert not torch.allclose(mixed[:, 5:], text[:, 5:])


def test_kv_cache_token_by_token_equals_full_pass():
    model = tiny_model().double()
    ids = torch.randint(0, 400, (2, 10))
    im = torch.zeros(2, 10, dtype=torch.bool)
    im[:, 1:4] = True
    full = full_logits(model, ids, im_mask=im)
    cache = model.new_cache(2, capacity=3)  # small on purpose: growth is exercised
    # a 4-position chunk (with image tokens), then one position at a time
    steps = [model.logits(model(model.model.tok_embeddings(ids[:, :4]), cache=cache, im_mask=im[:, :4]))]
    for t in range(4, 10):
        steps.append(model.logits(model(model.model.tok_embeddings(ids[:, t : t + 1]), cache=cache)))
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-9, atol=1e-9)
    assert cache.length == 10


def test_left_padded_batch_equals_sequences_alone():
    model = tiny_model().double()
    lengths = [9, 4, 6]
    seqs = [torch.randint(0, 400, (n,)) for n in lengths]
    ims = [torch.zeros(n, dtype=torch.bool) for n in lengths]
    ims[1][1:3] = True  # PLoRA inside a padded row
    T = max(lengths)
    ids = torch.zeros(3, T, dtype=torch.long)
    attn = torch.zeros(3, T, dtype=torch.bool)
    im = torch.zeros(3, T, dtype=torch.bool)
    for r, (s, m) in enumerate(zip(seqs, ims)):
        ids[r, T - len(s):], attn[r, T - len(s):], im[r, T - len(s):] = s, True, m
    cache = model.new_cache(3, T + 3)
    batch = model.logits(model(model.model.tok_embeddings(ids), cache=cache, attention_mask=attn, im_mask=im))
    nxt = torch.randint(0, 400, (3, 3))
    steps = [model.logits(model(model.model.tok_embeddings(nxt[:, k : k + 1]), cache=cache)) for k in range(3)]
    for r, (s, m) in enumerate(zip(seqs, ims)):
        alone_ids = torch.cat([s, nxt[r]])[None]
        alone_im = torch.cat([m, torch.zeros(3, dtype=torch.bool)])[None]
        alone = full_logits(model, alone_ids, im_mask=alone_im)
        torch.testing.assert_close(batch[r, T - len(s):], alone[0, : len(s)], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(torch.cat(steps, dim=1)[r], alone[0, len(s):], rtol=1e-9, atol=1e-9)
