"""Every model behind one small interface (see base.py); `load_model(spec)` resolves a spec string."""
from composer.model.registry import ModelSpecError, load_model

__all__ = ["load_model", "ModelSpecError"]
