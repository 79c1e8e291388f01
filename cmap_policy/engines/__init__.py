"""Engines for many claim lines at once, with the interpreter's decisions.

``batch`` decides files (Parquet, CSV, JSON Lines, X12), reading them with ``files`` and checking each
column with ``checks`` (the very field checks of ``lines.parse_line``); ``slots`` decides a batch with the
interpreter itself, once per distinct slot, which ``batch`` does with numpy and ``spark`` with Apache
Spark. ``tables`` decides a table already in memory (pyarrow, pandas, Polars, DuckDB) on ``batch``'s road.

Nothing is imported here: each engine needs its own libraries (pyarrow and numpy; pyspark), and
``import cmap_policy`` must not load them. Import the engine you use: ``from cmap_policy.engines
import batch``.
"""
