"""Shared pytest setup."""
import json as _json

import pytest as _pytest


def pytest_configure(config):
    # Slow checks (a real browser, a real server) still run by default; `-m "not slow"` skips them.
    config.addinivalue_line("markers", "slow: a check that drives a real browser or server")


# --- image library (composer.retrieval) ---------------------------------------------------
# A CLIP small enough to build in milliseconds: random weights, real open_clip code paths.
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_CLIP_NAME = "composer-tiny-clip"


@_pytest.fixture(scope="session")
def tiny_clip_config(tmp_path_factory):
    """Path of the tiny config, registered with open_clip (subprocesses register it themselves)."""
    import open_clip

    path = tmp_path_factory.mktemp("open_clip_configs") / f"{TINY_CLIP_NAME}.json"
    path.write_text(_json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(path)
    return path


@_pytest.fixture(scope="session")
def tiny_clip_spec(tiny_clip_config) -> str:
    return f"open_clip:{TINY_CLIP_NAME}:none"


@_pytest.fixture(scope="session")
def tiny_clip(tiny_clip_spec):
    from composer.retrieval import load_encoder

    return load_encoder(tiny_clip_spec)


@_pytest.fixture(scope="session")
def embedded_encoder():
    """The offline label-bridge encoder, loaded once: it costs seconds."""
    from composer.retrieval import load_encoder

    return load_encoder("embedded")


# --- the editor: a real `python app.py` and a real chromium (composer.app_testing) ---------
@_pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The editor with the embedded model, its own data folder and its own temp folder (`tmp`),
    so that a test can see what a closed tab leaves behind."""
    from composer.app_testing import app_server

    tmp = tmp_path_factory.mktemp("app-tmp")
    with app_server(["--data", str(tmp_path_factory.mktemp("app-data"))], env={"TMPDIR": str(tmp)}) as srv:
        srv.tmp = tmp
        yield srv


@_pytest.fixture(scope="module")
def browser():
    from composer.app_testing import chromium

    with chromium() as b:
        yield b


# --- OpenAI-compatible loopback servers that answer from a script (composer.model.remote_testing)
@_pytest.fixture
def scripted():
    from composer.model.remote_testing import ScriptedServer

    servers = []

    def make(handler, models=("scripted",)):
        s = ScriptedServer(handler, models)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()
