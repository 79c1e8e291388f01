"""The telehealth table as a spreadsheet: export the policy to it, import the official one into the policy.

DSS publishes the CMAP Telehealth Table as a spreadsheet whose columns (as its
page describes them) are the procedure code, a description, the revenue center
code, the effective and end dates, whether audio-only is allowed, and policy
guidelines. ``export_table`` writes the policy in those columns, followed by
columns the official table does not have (code system, category, status,
modalities, limits, citation, notes) so that an export imported again loses
nothing a decision depends on. ``import_table`` reads such a table (official or
exported) into a policy folder as one release.

What the official columns cannot carry, and how an import treats it:

* modalities other than audio-video and audio-only, and a row that is listed as
  not permitted: the ``Modalities`` and ``Status`` columns carry them; without
  them a listed row allows audio-video, plus audio-only when that column says
  yes, and a row whose guideline begins "Not permitted via telehealth" is read
  as not permitted;
* limits (age, provider type, established patient, units): the ``Limits``
  column (JSON); without it, a row that matches an existing period keeps that
  period's limits and a new row has none;
* citations: the ``Citation`` columns; without them a new row cites the
  release's source;
* the release history: an import is one release, so the rows' release of
  introduction and of ending are not read back (they are exported for readers);
* descriptions of CPT codes: the AMA owns CPT descriptors, so a new CPT code
  gets a placeholder description unless the table's are declared to be your own
  words (``cpt_descriptions=True``).

openpyxl (in the base install, imported only when a spreadsheet is read or written) is the xlsx reader
and writer: it is maintained, pure Python, and does both directions, which the
read-only calamine binding does not.

The modules, in the order a table flows through an import: ``columns`` (the headings and how they are
matched), ``read`` (a file into checked rows, each cell read by ``cells``), ``merge`` (rows into a code's
periods), ``importer`` (a release written only when the result loads); ``export`` goes the other way.
"""

from ...errors import TableError
from .columns import COLUMNS, FORMATS, Change, Column, RowProblem, parse_column_map
from .export import export_table, table_rows
from .importer import ImportResult, import_table
from .read import ParsedTable, RawTable, TableRow, parse_table, read_table

__all__ = [
    "COLUMNS",
    "FORMATS",
    "Change",
    "Column",
    "ImportResult",
    "ParsedTable",
    "RawTable",
    "RowProblem",
    "TableError",
    "TableRow",
    "export_table",
    "import_table",
    "parse_column_map",
    "parse_table",
    "read_table",
    "table_rows",
]
