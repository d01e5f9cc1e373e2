"""Cross-call prefix reuse in the xcomposer2 ChatModel: the KV cache of the last single-prompt call
is cropped to what the next prompt shares with it, and only the rest is run. Outputs must not
change (greedy, double precision), and usage.prefill must drop by exactly the shared length."""
import pytest
import torch
from PIL import Image

from composer.model.base import Prompt, Sampling
from composer.model.xcomposer2.backend import XComposer2Chat
from composer.model.xcomposer2.prompting import tokenize
from composer.model.xcomposer2.testing import script_next_tokens, tiny_model, tiny_tokenizer

N_IMG = 4  # tokens per image in the tiny config
GREEDY = Sampling(temperature=0.0, repetition_penalty=1.1, max_new_tokens=6)
ONE = Sampling(temperature=0.0, repetition_penalty=1.0, max_new_tokens=1)  # nothing generated is fed

ARTICLE = ('给定文章"<Seg0> The quick brown fox jumps over the lazy dog.\n'
           '<Seg1> A paragraph about mountains, rivers and the sea.\n'
           '<Seg2> Hello world, this is a tiny tokenizer for tests.\n" ')


def place():
    return Prompt.user(ARTICLE + "根据上述文章，选择适合插入图像的行", answer_prefix="适合插入图像的行是")


def caption(slot, past=()):
    earlier = "".join(f'现在<Seg{k}>后插入图像对应的标题是"{c}"，' for k, c in past)
    return Prompt.user(f"{ARTICLE}{earlier}给出适合在<Seg{slot}>后插入的图像对应的标题。", answer_prefix='标题是"')


def red(size=(40, 30)):
    return Image.new("RGB", size, (220, 30, 30))


def blue(size=(40, 30)):
    return Image.new("RGB", size, (20, 30, 220))


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=5).double()


@pytest.fixture()
def on(model, tok):
    return XComposer2Chat.from_model(model, tok)


@pytest.fixture()
def off(model, tok):
    return XComposer2Chat.from_model(model, tok, reuse_prefix=False)


def keys(prompt, tok, image_keys=None):
    """Position keys as the backend compares them: text ids, and one key per image token."""
    tp = tokenize(prompt, tok)
    out = []
    for i, run in enumerate(tp.runs):
        out += run
        if i < len(tp.images):
            out += [(image_keys[i], j) for j in range(N_IMG)]
    return out


def shared(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return min(n, len(b) - 1)


def run_calls(chat, calls):
    """calls: (kind, prompt, arg) with kind stream / complete / choose. Returns outputs and the
    prefill of each call."""
    outs, prefills = [], []
    for kind, prompt, arg in calls:
        before = chat.usage.prefill
        if kind == "stream":
            outs.append("".join(chat.stream(prompt, arg)))
        elif kind == "complete":
            outs.append(chat.complete([prompt], arg)[0])
        else:
            outs.append(chat.choose(prompt, arg))
        prefills.append(chat.usage.prefill - before)
    return outs, prefills


def test_text_sequence_same_output_less_prefill(on, off, tok):
    calls = [("complete", place(), GREEDY), ("stream", caption(0), GREEDY),
             ("complete", caption(1, [(0, "a fox")]), GREEDY),
             ("complete", caption(2, [(0, "a fox"), (1, "the sea")]), GREEDY),
             ("choose", caption(2, [(0, "a fox"), (1, "the sea")]), ["A", "B", "the quick brown fox"])]
    out_off, pre_off = run_calls(off, calls)
    out_on, pre_on = run_calls(on, calls)
    for a, b in zip(out_on, out_off):
        if isinstance(a, list):
            assert a == pytest.approx(b, abs=1e-9)
        else:
            assert a == b
    assert pre_on[0] == pre_off[0]  # nothing cached yet
    assert all(p_on < p_off for p_on, p_off in zip(pre_on[1:], pre_off[1:]))
    assert sum(pre_on) < 0.6 * sum(pre_off)


def test_prefill_drops_by_the_shared_length(on, off, tok):
    a, b = caption(1, [(0, "a fox")]), caption(2, [(0, "a fox"), (1, "the sea")])
    for chat in (on, off):
        chat.complete([a], ONE)
    pre = {}
    for name, chat in (("on", on), ("off", off)):
        before = chat.usage.prefill
        chat.complete([b], ONE)
        pre[name] = chat.usage.prefill - before
    n = shared(keys(a, tok), keys(b, tok))
    assert n >= len(keys(Prompt.user(ARTICLE), tok)) - 6  # the whole article at least (not its turn end)
    assert pre["off"] == len(keys(b, tok))
    assert pre["on"] == pre["off"] - n


def test_same_prompt_twice_runs_one_position(on, tok):
    p = caption(0)
    first = on.complete([p], ONE)
    before = on.usage.prefill
    assert on.complete([p], ONE) == first
    assert on.usage.prefill - before == 1  # at least one position runs, for its logits


def test_generated_positions_are_kept(on, tok):
    p = caption(0)
    before = on.usage.decode
    on.complete([p], Sampling(temperature=0.0, repetition_penalty=1.0, max_new_tokens=5))
    generated = on.usage.decode - before
    kept = on._kept
    n = len(keys(p, tok))
    # every generated token but the last was fed back, and is cached after the prompt
    assert kept.cache.length == len(kept.keys) == n + generated - 1
    assert kept.keys[:n] == keys(p, tok)


def test_image_in_shared_part(on, off, tok, model):
    def with_image(img, task):
        return Prompt.user(img, ARTICLE + task, answer_prefix='标题是"')

    calls = [("complete", with_image(red(), "给出适合在<Seg0>后插入的图像对应的标题。"), GREEDY),
             ("stream", with_image(red(), "给出适合在<Seg1>后插入的图像对应的标题。"), GREEDY),
             ("choose", with_image(red(), "给出适合在<Seg2>后插入的图像对应的标题。"), ["A", "B", "C"])]
    out_off, pre_off = run_calls(off, calls)

    encoded = []
    real = model.encode_images
    model.encode_images = lambda images: encoded.append(len(images)) or real(images)
    try:
        out_on, pre_on = run_calls(on, calls)
    finally:
        del model.encode_images
    assert out_on[:2] == out_off[:2]
    assert out_on[2] == pytest.approx(out_off[2], abs=1e-9)
    # A fresh but equal image (same pixels) is recognised; it is encoded by the first call only.
    assert encoded == [1]
    k = [keys(p, tok, ["img"]) for _, p, _ in calls]
    n = shared(k[0], k[1])
    assert n > len(tokenize(calls[0][1], tok).runs[0]) + N_IMG  # past the image
    assert pre_on[1] == pre_off[1] - n


def test_different_image_is_not_reused(on, off, tok):
    text = ARTICLE + "给出适合在<Seg0>后插入的图像对应的标题。"
    first, second = Prompt.user(red(), text), Prompt.user(blue(), text)
    for chat in (on, off):
        chat.complete([first], GREEDY)
    before = on.usage.prefill
    out_on = on.complete([second], GREEDY)
    assert out_on == off.complete([second], GREEDY)
    # only the template before the image is shared; every image and text position after it runs
    before_image = len(tokenize(second, tok).runs[0])
    assert on.usage.prefill - before == len(keys(second, tok, ["x"])) - before_image


def test_early_divergence_gets_no_reuse(on, off, tok):
    a = place()
    b = Prompt.user(ARTICLE + "根据上述文章，选择适合插入图像的行", system="a system turn first")
    for chat in (on, off):
        chat.complete([a], GREEDY)
    before = on.usage.prefill
    assert on.complete([b], GREEDY) == off.complete([b], GREEDY)
    n = shared(keys(a, tok), keys(b, tok))
    assert n <= 3  # BOS and the turn start at most
    assert on.usage.prefill - before == len(keys(b, tok)) - n


def test_sampled_output_unchanged(on, off):
    s = Sampling(temperature=1.0, max_new_tokens=8, seed=3)
    seq = [place(), caption(0), caption(1, [(0, "x")])]
    assert [on.complete([p], s)[0] for p in seq] == [off.complete([p], s)[0] for p in seq]


def test_stop_strings_after_reuse(on, tok):
    on.complete([caption(0)], GREEDY)
    words = tok.encode("The quick brown fox jumps")
    script_next_tokens(on, list(words) + [tok.eos_id])
    try:
        before = on.usage.prefill
        stop_at_brown = Sampling(temperature=0, max_new_tokens=50, stop=("brown",))
        out = "".join(on.stream(caption(1, [(0, "a fox")]), stop_at_brown))
    finally:
        del on.model.logits
    assert out.strip() == "The quick"
    assert on.usage.prefill - before < len(keys(caption(1, [(0, "a fox")]), tok)) // 2
    kept = on._kept
    assert kept.cache.length == len(kept.keys)  # what is kept after a stop string is consistent


def test_stream_closed_early_keeps_a_consistent_cache(on, off, tok):
    it = on.stream(caption(0), Sampling(temperature=0.0, max_new_tokens=20))
    next(it)
    it.close()
    kept = on._kept
    assert kept is not None and kept.cache.length == len(kept.keys)
    p = caption(1, [(0, "a fox")])
    assert on.complete([p], GREEDY) == off.complete([p], GREEDY)


def test_batched_complete_leaves_the_kept_prefix(on, off, tok):
    a, b = caption(0), caption(1, [(0, "a fox")])
    on.complete([a], ONE)
    kept = on._kept
    batch = [place(), caption(2)]
    assert on.complete(batch, GREEDY) == off.complete(batch, GREEDY)
    assert on._kept is kept
    before = on.usage.prefill
    assert on.complete([b], ONE) == off.complete([b], ONE)
    assert on.usage.prefill - before == len(keys(b, tok)) - shared(keys(a, tok), keys(b, tok))


def test_reuse_off_keeps_nothing(off):
    off.complete([place()], GREEDY)
    assert off._kept is None


def test_cache_crop(model):
    cache = model.new_cache(1, 4)
    x = torch.randn(1, 7, model.config.decoder.hidden_size, dtype=model.dtype)
    with torch.no_grad():
        full = model(x, cache=model.new_cache(1, 4))
        model(x[:, :5], cache=cache)
        cache.crop(3)
        assert cache.length == 3 and int(cache.next_position) == 3 and not cache.valid[:, 3:].any()
        rest = model(x[:, 3:], cache=cache)
    assert torch.allclose(rest, full[:, 3:], atol=1e-10)
    with pytest.raises(ValueError):
        cache.crop(8)
