"""The CMAP (Connecticut Medicaid, HUSKY Health) telehealth policy as code.

    >>> from cmap_policy import load_policy, evaluate, ClaimLine
    >>> import datetime as dt
    >>> policy = load_policy()
    >>> evaluate(policy, ClaimLine("T1016", dt.date(2026, 1, 5), modifiers=("93",))).outcome.value
    'payable'
"""

from typing import TYPE_CHECKING, Any

from .api import CodeReport, eval_lines, show, validate
from .errors import LineError, PolicyError, Problem
from .explain import explain
from .interpreter import evaluate
from .lines import parse_line
from .load.loader import load_policy
from .model import ClaimLine, Decision, Outcome, Period, Policy, Reason
from .results import LineResult

if TYPE_CHECKING:
    from .engines.tables import decide_table

__all__ = [
    "ClaimLine",
    "CodeReport",
    "Decision",
    "LineError",
    "LineResult",
    "Outcome",
    "Period",
    "Policy",
    "PolicyError",
    "Problem",
    "Reason",
    "decide_table",
    "eval_lines",
    "evaluate",
    "explain",
    "load_policy",
    "parse_line",
    "show",
    "validate",
]


def __getattr__(name: str) -> Any:
    # decide_table needs pyarrow and numpy, which `import cmap_policy` (and a one-line eval) must not load: its
    # module is imported when the name is first asked for (PEP 562)
    if name == "decide_table":
        from .engines.tables import decide_table

        return decide_table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
