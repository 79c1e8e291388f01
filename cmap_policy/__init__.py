"""The CMAP (Connecticut Medicaid, HUSKY Health) telehealth policy as code.

    >>> from cmap_policy import load_policy, evaluate, ClaimLine
    >>> import datetime as dt
    >>> policy = load_policy()
    >>> evaluate(policy, ClaimLine("T1016", dt.date(2026, 1, 5), modifiers=("93",))).outcome.value
    'payable'
"""

from .api import CodeReport, LineResult, eval_lines, show, validate
from .errors import LineError, PolicyError, Problem
from .explain import explain
from .interpreter import evaluate
from .lines import parse_line
from .load.loader import load_policy
from .model import ClaimLine, Decision, Outcome, Period, Policy, Reason

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
    "eval_lines",
    "evaluate",
    "explain",
    "load_policy",
    "parse_line",
    "show",
    "validate",
]
