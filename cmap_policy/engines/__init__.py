"""Engines for many claim lines at once, with the interpreter's decisions.

``batch`` decides files on DuckDB (embedded), reading them with ``files`` and checking each column with
``checks`` (the very field checks of ``lines.parse_line``); ``sqlrules`` is the decision as one SQL query,
which ``batch`` runs on DuckDB and ``spark`` on Apache Spark (through sqlglot).

Nothing is imported here: each engine needs its own libraries (DuckDB and pyarrow; pyspark), and
``import cmap_policy`` must not load them. Import the engine you use: ``from cmap_policy.engines
import batch``.
"""
