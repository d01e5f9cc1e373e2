"""The xcomposer2 ChatModel end to end on a tiny random model: the output is noise, the plumbing
(images spliced, im_mask, stops, batching, choose, usage) is checked."""
import pytest
import torch
from PIL import Image

from composer.model.base import ChatModel, Prompt, Sampling
from composer.model.registry import load_model
from composer.model.xcomposer2.backend import TextStream, XComposer2Chat
from composer.model.xcomposer2.prompting import render, tokenize
from composer.model.xcomposer2.testing import (
    save_checkpoint,
    script_next_tokens,
    tiny_model,
    tiny_tokenizer,
    tiny_tokenizer_proto,
)

GREEDY = Sampling(temperature=0.0, repetition_penalty=1.0, max_new_tokens=6)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture()
def chat(tok):
    return XComposer2Chat.from_model(tiny_model(seed=5).double(), tok)


def red(size=(40, 30)):
    return Image.new("RGB", size, (220, 30, 30))


def blue():
    return Image.new("RGB", (30, 30), (20, 30, 220))


def test_is_a_chat_model(chat):
    assert isinstance(chat, ChatModel)
    assert chat.sees_images and chat.dialect == "xcomposer"
    assert chat.stop_ids == (2, 3)  # </s> and [UNUSED_TOKEN_145] (92542 in the real vocabulary)


def test_template_and_bos(tok):
    p = Prompt.user(red(), " 给定文章", system="sys", answer_prefix="标题是\"")
    pieces = render(p)
    assert pieces[0] == "[UNUSED_TOKEN_146]system\nsys[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]user\n"
    assert isinstance(pieces[1], Image.Image)
    assert pieces[2] == " 给定文章[UNUSED_TOKEN_145]\n[UNUSED_TOKEN_146]assistant\n标题是\""
    tp = tokenize(p, tok)
    assert tp.runs[0][0] == tok.bos_id and tok.bos_id not in tp.runs[1]
    assert tp.runs[0][1] == tok.start_of_turn_id
    assert tp.runs[1].count(tok.end_of_turn_id) == 1


def test_images_spliced_with_im_mask(chat):
    model = chat.model
    p = Prompt.user(red(), " and ", blue(), " which?")
    tp = tokenize(p, chat.tokenizer)
    embeds, im = model.embed(tp)
    n_img = model.config.vision.tokens_per_image
    assert n_img == 4
    assert embeds.shape[0] == sum(map(len, tp.runs)) + 2 * n_img == im.shape[0]
    assert int(im.sum()) == 2 * n_img
    images = model.encode_images([red(), blue()])
    a = len(tp.runs[0])
    b = a + n_img + len(tp.runs[1])
    assert im[a : a + n_img].all() and im[b : b + n_img].all() and not im[:a].any()
    assert torch.equal(embeds[a : a + n_img], images[0])
    assert torch.equal(embeds[b : b + n_img], images[1])
    text = torch.tensor(tp.runs[1])
    assert torch.equal(embeds[a + n_img : b], model.model.tok_embeddings(text))


def test_stream_stops_on_end_of_turn(chat, tok):
    hello = tok.encode("hello world")
    script_next_tokens(chat, hello + [tok.end_of_turn_id] + hello)
    out = "".join(chat.stream(Prompt.user(red(), "hi"), Sampling(temperature=0, max_new_tokens=50)))
    assert out.strip() == "hello world"
    assert chat.usage.decode == len(hello) + 1  # the stop token is generated, nothing after it


def test_stream_stops_on_eos_and_stop_strings(chat, tok):
    words = tok.encode("The quick brown fox jumps")
    script_next_tokens(chat, words + [tok.eos_id])
    out = "".join(chat.stream(Prompt.user("x"), Sampling(temperature=0, max_new_tokens=50)))
    assert out.strip() == "The quick brown fox jumps"
    script_next_tokens(chat, words + [tok.eos_id])
    out = "".join(chat.stream(Prompt.user("x"), Sampling(temperature=0, max_new_tokens=50, stop=("brown",))))
    assert out.strip() == "The quick"
    assert chat.usage.decode < 2 * len(words) + 1  # generation ended at the stop string


def test_text_stream_holds_back_partial_stop(tok):
    ts = TextStream(tok, ["jumps"])
    pieces = [ts.push(t) for t in tok.encode("The quick jum")]
    assert "".join(pieces).strip() == "The quick"  # "jum" may be the start of the stop string
    assert ts.flush() == "jum"


def test_max_new_tokens_and_usage(chat):
    p = Prompt.user(red(), "describe")
    out = list(chat.stream(p, Sampling(temperature=0.8, top_p=0.9, top_k=20, max_new_tokens=5, seed=0)))
    n_prompt = tokenize(p, chat.tokenizer).length(4)
    assert chat.usage.prefill == n_prompt
    assert chat.usage.decode <= 5 and chat.usage.calls == 1
    assert isinstance("".join(out), str)


def test_seeded_sampling_repeats(chat):
    s = Sampling(temperature=1.0, max_new_tokens=8, seed=42)
    p = Prompt.user("tell me")
    assert "".join(chat.stream(p, s)) == "".join(chat.stream(p, s))


def test_complete_batch_equals_one_at_a_time(chat):
    prompts = [Prompt.user(red(), "a long prompt with an image in it"), Prompt.user("short"),
               Prompt.user(blue(), " ", red(), "two images", answer_prefix="最合适的图是")]
    batched = chat.complete(prompts, GREEDY)
    assert chat.usage.calls == 1
    alone = [chat.complete([p], GREEDY)[0] for p in prompts]
    assert batched == alone
    assert len(batched) == 3


def test_choose_scores_match_full_passes_and_prefix_runs_once(chat):
    model = chat.model
    prompt = Prompt.user(red(), "which one? ", answer_prefix="最合适的图是")
    options = ["A", "B", "the quick brown fox"]
    calls = []
    real_forward = model.model.forward

    def spy(embeds, cache=None, attention_mask=None, im_mask=None):
        calls.append((embeds.shape[0], embeds.shape[1], cache.length if cache is not None else None))
        return real_forward(embeds, cache=cache, attention_mask=attention_mask, im_mask=im_mask)

    model.model.forward = spy
    scores = chat.choose(prompt, options)
    model.model.forward = real_forward
    assert len(scores) == 3 and all(s < 0 for s in scores)

    finals = [tokenize(prompt, chat.tokenizer, extra=o).runs[-1] for o in options]
    shared = 0
    while all(len(f) > shared + 1 for f in finals) and len({f[shared] for f in finals}) == 1:
        shared += 1
    prefix_len = tokenize(prompt, chat.tokenizer).length(4) - len(tokenize(prompt, chat.tokenizer).runs[-1]) + shared
    # one pass over the prefix (batch 1, empty cache), one batched pass over the multi-token option
    assert calls[0] == (1, prefix_len, 0)
    assert calls[1:] == [(1, len(finals[2]) - shared - 1, prefix_len)]
    assert chat.usage.prefill == prefix_len + len(finals[2]) - shared - 1

    with torch.no_grad():
        for option, final, score in zip(options, finals, scores):
            tp = tokenize(prompt, chat.tokenizer, extra=option)
            embeds, im = model.embed(tp)
            logp = torch.log_softmax(model.logits(model(embeds[None], im_mask=im[None])), -1)[0]
            n = len(final) - shared
            targets = torch.tensor(final[shared:])
            T = embeds.shape[0]
            expected = logp[T - n - 1 : T - 1].gather(-1, targets[:, None]).sum()
            assert score == pytest.approx(float(expected), abs=1e-9)


def test_choose_ranks_a_scripted_favourite(chat, tok):
    prompt = Prompt.user("pick")
    b = tokenize(prompt, tok, extra="B").runs[-1][-1]
    script_next_tokens(chat, [b])
    scores = chat.choose(prompt, ["A", "B", "C"])
    assert max(range(3), key=scores.__getitem__) == 1


def test_registry_loads_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = tiny_model(seed=7)
    folder = save_checkpoint(model, tmp_path / "ixc2-tiny", tokenizer_proto=tiny_tokenizer_proto())
    chat = load_model(f"xcomposer2:{folder}", device="cpu")
    assert isinstance(chat, XComposer2Chat) and chat.model.dtype == torch.float32
    assert len(chat.complete([Prompt.user(red(), "hello")], GREEDY)) == 1
