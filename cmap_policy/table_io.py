"""The old path of ``cmap_policy.authoring.table``, kept as a plain re-export for code that imported it here."""

from .authoring.table import (
    COLUMNS,
    FORMATS,
    Change,
    Column,
    ImportResult,
    ParsedTable,
    RawTable,
    RowProblem,
    TableError,
    TableRow,
    export_table,
    import_table,
    parse_column_map,
    parse_table,
    read_table,
    table_rows,
)

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
