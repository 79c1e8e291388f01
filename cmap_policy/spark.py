"""The old path of ``cmap_policy.engines.spark``, kept as a plain re-export for code that imported it here."""

from .engines.spark import active_session, evaluate, read_input, run, session, split

__all__ = ["active_session", "evaluate", "read_input", "run", "session", "split"]
