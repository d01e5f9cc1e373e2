"""Every model behind one small interface (see base.py); `load_model(spec)` resolves a spec string."""
from composer.model.registry import load_model, ModelSpecError

__all__ = ["load_model", "ModelSpecError"]
