"""Changing the policy by pull request: what the authors' commands do, as functions.

``fmt`` (the one canonical layout of every file), ``edit`` (release new, code add/end/set: the JSON
written for you, refused when the result would not load), ``diff`` (rows and every kind of claim line
whose decision changes, between two trees, revisions or releases), ``changelog`` (per release, in the
style of an Important Message), ``spec`` (the authors' tests: claim lines with expected decisions, and
their coverage) and ``table`` (the official spreadsheet: import and export).
"""

from .changelog import changelog
from .diff import diff
from .edit import code_add, code_end, code_set, release_new
from .fmt import fmt
from .spec import test
from .table import export_table, import_table

__all__ = ["changelog", "code_add", "code_end", "code_set", "diff", "export_table", "fmt", "import_table",
           "release_new", "test"]
