"""``diff``: what a change to the policy changes, row by row and decision by decision.

The decision-level diff is exhaustive, not sampled. The interpreter's input
space is finite once it is cut into classes that the interpreter cannot tell
apart, and every class is evaluated, with the real ``evaluate``, on both sides:

* codes: every code either side lists, plus one code neither lists (it stands
  for all the others);
* dates: intervals cut at every period boundary of the code on both sides and
  at every attestation date of both programs (a date inside an interval sees
  the same period and the same attestations as the interval's first day);
* the "front" of a line (modifiers, place of service, stated modality, claim
  type): every combination of modifier classes (modifiers with the same
  meaning on both sides are interchangeable), none or each modality stated,
  no place of service, an in-person one and each telehealth one, each claim
  type, evaluated against a code neither side lists, and grouped by what the
  interpreter made of them on each side (telehealth or not, which modality,
  which of the line-level denials). The rest of the interpreter only reads
  that, so one line per group stands for the group;
* revenue center codes (institutional lines of a code that has some): none,
  each one named on either side, one other;
* limit fields: absent, and the first value of each interval between the
  boundaries of the code's limits on either side. Each field only ever adds
  its own reason (or its own "to confirm"), so a combination of fields
  differs between the sides only if one field alone, or none, already does:
  fields are varied one at a time.

A decision is compared by its signature: outcome, reason codes, the limits
left to confirm and the attestations. Messages are not compared: they quote
guideline text, which the row diff reports.

The modules: ``sides`` (what is compared: a folder, a git revision, a release), ``rows`` (periods, codes,
program entries and releases added, ended or changed), ``decisions`` (the exhaustive comparison),
``result`` (``diff`` and the ``PolicyDiff`` it returns) and ``markdown`` (the pull-request comment).
"""

from ...errors import DiffError
from .decisions import NO_DECISION_CHANGES, decision_changes, line_class, signature, signature_dict
from .markdown import render_markdown
from .result import PolicyDiff, diff, diff_sides
from .rows import code_changes, program_changes, release_changes, row_changes
from .sides import Side, load_revision, resolve

__all__ = [
    "NO_DECISION_CHANGES",
    "DiffError",
    "PolicyDiff",
    "Side",
    "code_changes",
    "decision_changes",
    "diff",
    "diff_sides",
    "line_class",
    "load_revision",
    "program_changes",
    "release_changes",
    "render_markdown",
    "resolve",
    "row_changes",
    "signature",
    "signature_dict",
]
