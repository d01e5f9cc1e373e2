"""composer: an illustrated-article composer (InternLM-XComposer2 or a small embedded model)."""

__version__ = "0.1.0"

# Before any of our modules imports llama_cpp or torch: their OpenMP runtimes read the wait
# policy once, when loaded (see composer/runtime.py).
from composer.runtime import apply_env as _apply_env

_apply_env()
