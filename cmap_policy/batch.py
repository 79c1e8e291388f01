"""The old path of ``cmap_policy.engines.batch``, kept as a plain re-export for code that imported it here."""

from .engines.batch import Answered, Engine, Progress, Summary, pipeline, run

__all__ = ["Answered", "Engine", "Progress", "Summary", "pipeline", "run"]
