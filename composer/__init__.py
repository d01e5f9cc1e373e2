"""composer: an illustrated-article composer (InternLM-XComposer2 or a small embedded model)."""

__version__ = "0.1.0"
