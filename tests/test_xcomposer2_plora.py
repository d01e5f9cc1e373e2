"""PLoRA: the low-rank branch touches image rows only."""
import torch
import torch.nn.functional as F

from composer.model.xcomposer2.plora import PLoRALinear


def make(bias: bool = False) -> PLoRALinear:
    torch.manual_seed(0)
    layer = PLoRALinear(16, 24, rank=4, alpha=8.0, bias=bias).double()
    with torch.no_grad():
        layer.Plora_B.weight.normal_()  # a fresh B is zero, which would hide the branch
        if bias:
            layer.bias.normal_()
    return layer


def test_no_image_tokens_is_exactly_the_base_layer():
    layer = make(bias=True)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    base = F.linear(x, layer.weight, layer.bias)
    assert torch.equal(layer(x, None), base)
    assert torch.equal(layer(x, torch.zeros(2, 5, dtype=torch.bool)), base)


def test_all_image_tokens_equal_the_merged_weight():
    layer = make()
    assert layer.scale == 2.0
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    merged = layer.weight + 2.0 * layer.Plora_B.weight @ layer.Plora_A.weight
    out = layer(x, torch.ones(2, 5, dtype=torch.bool))
    torch.testing.assert_close(out, F.linear(x, merged), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer.merged_weight(), merged)


def test_mixed_mask_picks_the_right_weight_per_row():
    layer = make(bias=True)
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    mask = torch.rand(3, 7) > 0.5
    mask[0, 0], mask[0, 1] = True, False
    out = layer(x, mask)
    text = F.linear(x, layer.weight, layer.bias)
    image = F.linear(x, layer.merged_weight(), layer.bias)
    assert torch.equal(out[~mask], text[~mask])
    torch.testing.assert_close(out[mask], image[mask], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(text[mask], image[mask])  # the branch does something
