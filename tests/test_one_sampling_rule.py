"""One stop filter and one repetition-penalty meaning for every backend: the native XComposer2
stream goes through the shared StopStringFilter (so it, too, does not end an answer on the blank
lines before its first word), and the torch sampler penalises exactly what the numpy one does."""
import numpy as np
import torch

from composer.model.base import PENALTY_WINDOW, Sampling
from composer.model.sampling import apply_repetition_penalty
from composer.model.xcomposer2.backend import TextStream
from composer.model.xcomposer2.generation import Sampler
from composer.model.xcomposer2.testing import tiny_tokenizer


def test_native_stream_skips_leading_blank_lines_before_a_newline_stop():
    tok = tiny_tokenizer()
    ts = TextStream(tok, ["\n"])
    out = "".join(ts.push(t) for t in tok.encode("\n\nHello world\nmore")) + ts.flush()
    assert out.strip() == "Hello world" and ts.stopped


def test_torch_and_numpy_samplers_penalise_the_same_window():
    vocab = 50
    rng = np.random.default_rng(0)
    logits = rng.normal(size=vocab).astype(np.float32)
    history = list(rng.integers(0, vocab, size=3 * PENALTY_WINDOW))
    s = Sampling(temperature=0.0, repetition_penalty=1.5)
    expected = apply_repetition_penalty(logits, history[-PENALTY_WINDOW:], s.repetition_penalty)
    sampler = Sampler(s, 1, vocab, torch.device("cpu"))
    sampler.remember(0, history)
    mask = sampler.recent()[0].numpy()
    got = np.where(mask, np.where(logits > 0, logits / 1.5, logits * 1.5), logits)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert int(sampler(torch.tensor(logits)[None])[0]) == int(np.argmax(expected))
