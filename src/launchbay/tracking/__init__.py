"""In-run tracking: what code inside a run uses to log (``Run.get_context()``)."""

from .inrun import Run

__all__ = ["Run"]
