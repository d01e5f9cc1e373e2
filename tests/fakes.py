"""Kept for tests written before the shared models moved into the package: import from
composer.testing instead."""
from composer.testing import MARKERS, ScriptedModel

__all__ = ["MARKERS", "ScriptedModel"]
