"""Ollama through its OpenAI-compatible endpoint (`openai:http://127.0.0.1:11434#MODEL`), checked
against the request and reply shapes Ollama documents for /v1/models and /v1/chat/completions.
No Ollama can run here: the loopback server answers as Ollama's documentation says it does."""
import json
import time

from composer.model import load_model
from composer.model.base import Prompt, Sampling
from composer.model.remote_testing import ScriptedServer, send_json, sse_head

# Ollama's documented request fields for /v1/chat/completions (OpenAI compatibility page).
OLLAMA_FIELDS = {"model", "messages", "frequency_penalty", "presence_penalty", "response_format", "seed", "stop",
                 "stream", "stream_options", "temperature", "top_p", "max_tokens", "tools", "logprobs",
                 "top_logprobs", "reasoning_effort", "user"}
# Sent for vLLM, LMDeploy and llama.cpp; Ollama's JSON decoding ignores fields it does not know.
IGNORED_BY_OLLAMA = {"top_k", "repetition_penalty", "repeat_penalty"}
MODEL = "llama3.2:3b"


def ollama_chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"role": "assistant", "content": content or ""}
    event = {"id": "chatcmpl-17", "object": "chat.completion.chunk", "created": int(time.time()), "model": MODEL,
             "system_fingerprint": "fp_ollama", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def ollama(h, body):
    assert set(body) <= OLLAMA_FIELDS | IGNORED_BY_OLLAMA, set(body) - OLLAMA_FIELDS - IGNORED_BY_OLLAMA
    assert body["model"] == MODEL
    for message in body["messages"]:
        assert message["role"] in {"system", "user", "assistant"}
        assert isinstance(message["content"], str) or all(p["type"] in {"text", "image_url"}
                                                          for p in message["content"])
    if body.get("stream"):
        sse_head(h)
        for piece in ["Apples, ", "pears ", "and plums."]:
            h.wfile.write(ollama_chunk(piece))
        h.wfile.write(ollama_chunk("", "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
            h.wfile.write(b"data: " + json.dumps({"id": "chatcmpl-17", "object": "chat.completion.chunk",
                                                  "model": MODEL, "choices": [], "usage": usage}).encode() + b"\n\n")
        h.wfile.write(b"data: [DONE]\n\n")
        return
    assert body.get("logprobs") is True and 0 < body["top_logprobs"] <= 20
    top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in [("yes", -0.1), ("no", -2.4)]]
    send_json(h, 200, {
        "id": "chatcmpl-18", "object": "chat.completion", "created": int(time.time()), "model": MODEL,
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "yes"}, "finish_reason": "stop",
                     "logprobs": {"content": [{"token": "yes", "logprob": -0.1, "bytes": [121, 101, 115],
                                               "top_logprobs": top}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}})


def test_ollama_model_named_in_the_spec_streams_and_chooses():
    with ScriptedServer(ollama, models=(MODEL, "qwen2.5:7b")) as server:
        model = load_model(f"openai:{server.url}#{MODEL}")
        assert model.name == f"openai:{MODEL}@{server.url}"
        text = "".join(model.stream(Prompt.user("Name three fruits.", system="Be brief."),
                                    Sampling(max_new_tokens=20, seed=3, stop=("\n\n",))))
        assert text == "Apples, pears and plums."
        assert model.usage.prefill == 11 and model.usage.decode == 4  # Ollama's include_usage chunk is read
        scores = model.choose(Prompt.user("Is the sky blue?"), ["yes", "no", "maybe"])
        assert scores[0] > scores[1] > scores[2] == float("-inf")
        sent = server.bodies[0]
        assert sent["max_tokens"] == 20 and sent["seed"] == 3 and sent["stream"] is True
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


def test_without_a_model_the_first_one_ollama_lists_is_used():
    with ScriptedServer(ollama, models=(MODEL,)) as server:
        assert load_model(f"openai:{server.url}").model == MODEL
