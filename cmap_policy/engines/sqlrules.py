"""The decision as set-based SQL, defined once for every SQL engine.

The interpreter (``interpreter.evaluate``) is the reference semantics; this
module restates the same decision for engines that decide millions of lines
at a time. It has no engine imports: DuckDB (``batch.py``) runs it today and
Spark (or any engine sqlglot writes for) can run the same text.

Entry points
------------
``compile_tables(policy, release)``
    The policy as published in one release, as small tables of plain Python
    values (``Table``: column names, SQL types, rows). Load them into the
    engine under their names (``modalities``, ``modifiers``, ``places``,
    ``segments``).
``decision_sql(tables, lines="lines", dialect="duckdb")``
    One SELECT that decides every row of the relation ``lines`` (columns
    ``LINE_COLUMNS``), joining the tables above. ``dialect`` is any sqlglot
    dialect: the query is written in DuckDB SQL and transpiled by sqlglot, so
    ``dialect="spark"`` gives Spark SQL.
``decision_sql(..., compact=True)`` and ``decode_reasons(key)``
    The same query answering in numbers (a reason key, the matched segment's
    row, the modality's bit), for engines that make the text once per distinct
    answer (the DuckDB engine does).
``REASON_RULES``
    The reason rules, in the catalogue's order (``reasons.ORDER``): each one is
    a reason code and a SQL expression counting how often the reason applies to
    a line. The decision's reasons are these codes, each repeated that many
    times, in this order -- exactly the interpreter's order, which sorts its
    reasons stably by the catalogue.

The query returns one row per line with ``OUTPUT_COLUMNS``: the line's own
ids, ``outcome``, ``reasons`` (reason codes joined by single spaces),
``period`` (the matched period id, ``CODE@YYYY-MM-DD``), ``modality``,
``release`` and ``policy_hash``.

Portability rules kept here: only standard joins, CASE, integer arithmetic,
``&``/``|`` on integers, ``STRPOS``, ``CONCAT_WS``, ``REPEAT`` and ``RTRIM``;
set membership is a search in a separator-delimited string (``_member``), so
no engine needs array types; dates are integers (days since 1970-01-01).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..lines import CLAIM_TYPES
from ..model import MAX_AGE, Limit, Period, Policy
from ..reasons import ORDER, REASONS

EPOCH = dt.date(1970, 1, 1)
DAY_MIN = -1_000_000  # before 0001-01-01
DAY_MAX = 10_000_000  # after 9999-12-31
SEP = "\x1f"  # ASCII unit separator: joins set members so that membership is one string search

# What the decision reads from each line. ``day`` is days since 1970-01-01;
# ``mod1``..``mod4`` are the line's modifiers in order (NULL when absent);
# ``modality`` is the stated modality's id; ``claim_type`` is never NULL.
LINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("line_no", "BIGINT"),
    ("line_id", "VARCHAR"),
    ("claim_id", "VARCHAR"),
    ("code", "VARCHAR"),
    ("day", "INTEGER"),
    ("mod1", "VARCHAR"),
    ("mod2", "VARCHAR"),
    ("mod3", "VARCHAR"),
    ("mod4", "VARCHAR"),
    ("pos", "VARCHAR"),
    ("claim_type", "VARCHAR"),
    ("rcc", "VARCHAR"),
    ("modality", "VARCHAR"),
    ("member_age", "INTEGER"),
    ("provider_type", "VARCHAR"),
    ("units", "INTEGER"),
    ("established_patient", "BOOLEAN"),
)
OUTPUT_COLUMNS = ("line_no", "line_id", "claim_id", "code", "day", "outcome", "reasons", "period", "modality",
                  "release", "policy_hash")
MODIFIER_SLOTS = 4
LIMIT_KINDS = {"age": 1, "provider-type": 2, "established-patient": 3, "units-per-day": 4}


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type)
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class PolicyTables:
    release: str
    policy_hash: str
    modality_bits: dict[str, int]
    limit_slots: int
    limit_kinds: frozenset[str]
    tables: dict[str, Table]


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def _joined(items: Sequence[str]) -> str:
    for item in items:
        if SEP in item:
            raise ValueError(f"{item!r} contains the separator character U+001F, which a policy value may not hold")
    return SEP + SEP.join(items) + SEP if items else ""


def _segments(periods: Sequence[Period]) -> list[tuple[int, int, Period | None]]:
    """The day line of one code cut into [lo, hi] spans, each covered by a period or by none.

    Spans follow ``interpreter.find_period`` to the letter: a day belongs to the
    last period starting on or before it, if that period still covers it.
    """
    out: list[tuple[int, int, Period | None]] = []
    starts = [day_number(p.effective) for p in periods]
    if starts[0] > DAY_MIN:
        out.append((DAY_MIN, starts[0] - 1, None))
    for i, p in enumerate(periods):
        lo = starts[i]
        next_start = starts[i + 1] if i + 1 < len(periods) else DAY_MAX + 1
        hi = min(day_number(p.end) if p.end is not None else DAY_MAX, next_start - 1)
        if lo <= hi:
            out.append((lo, hi, p))
        gap_lo = max(hi + 1, lo)
        if gap_lo <= next_start - 1:
            out.append((gap_lo, next_start - 1, None))
    return out


def _limit_cells(lim: Limit | None, bits: dict[str, int]) -> tuple[Any, ...]:
    if lim is None:
        return (None, None, None, None, None, None)
    mask = 0
    for m in lim.modalities:
        mask |= bits[m]
    return (
        LIMIT_KINDS[lim.kind],
        mask,
        lim.min_age if lim.min_age is not None else 0,
        lim.max_age if lim.max_age is not None else MAX_AGE,
        _joined(lim.provider_types),
        lim.max_units,
    )


LIMIT_COLUMNS = (("kind", "INTEGER"), ("mask", "INTEGER"), ("min_age", "INTEGER"), ("max_age", "INTEGER"),
                 ("types", "VARCHAR"), ("max_units", "INTEGER"))


def compile_tables(policy: Policy, release: str | None = None) -> PolicyTables:
    """The policy as published in ``release`` (default: the latest) as small tables of plain values."""
    rel = policy.release(release)
    program = policy.program
    bits = {m: 1 << i for i, m in enumerate(program.modalities)}
    modalities = Table("modalities", (("modality", "VARCHAR"), ("bit", "INTEGER")), list(bits.items()))
    modifiers = Table(
        "modifiers",
        (("modifier", "VARCHAR"), ("bit", "INTEGER"),
         *((f"ok_{ct}", "BOOLEAN") for ct in CLAIM_TYPES)),
        [(m.code, bits[m.modality] if m.modality is not None else 0, *(ct in m.claim_types for ct in CLAIM_TYPES))
         for m in program.modifiers.values()],
    )
    places = Table("places", (("pos", "VARCHAR"), ("marks_th", "BOOLEAN"), ("accepted", "BOOLEAN")),
                   [(p.code, p.marks_telehealth, p.accepted) for p in program.places_of_service.values()])
    view = policy.views[rel.id]
    slots = max((len(p.limits) for v in view.values() for p in v.periods), default=0)
    kinds = frozenset(lim.kind for v in view.values() for p in v.periods for lim in p.limits)
    rows: list[tuple[Any, ...]] = []
    for code, v in sorted(view.items()):
        for lo, hi, p in _segments(v.periods):
            if p is None:
                rows.append((len(rows), code, lo, hi, None, None, None, None, None,
                             *(cell for _ in range(slots) for cell in _limit_cells(None, bits))))
                continue
            mask = 0
            for m in p.modalities:
                mask |= bits[m]
            lims: list[Limit | None] = [*p.limits, *([None] * (slots - len(p.limits)))]
            rows.append((len(rows), code, lo, hi, p.id, p.permitted, mask, _joined(p.revenue_center_codes),
                         len(p.revenue_center_codes),
                         *(cell for lim in lims for cell in _limit_cells(lim, bits))))
    segments = Table(
        "segments",
        (("seg_no", "INTEGER"), ("code", "VARCHAR"), ("lo", "INTEGER"), ("hi", "INTEGER"), ("period_id", "VARCHAR"),
         ("permitted", "BOOLEAN"), ("mod_mask", "INTEGER"), ("rccs", "VARCHAR"), ("n_rcc", "INTEGER"),
         *((f"lim{s}_{name}", typ) for s in range(1, slots + 1) for name, typ in LIMIT_COLUMNS)),
        rows,
    )
    return PolicyTables(rel.id, policy.hash, bits, slots, kinds,
                        {t.name: t for t in (modalities, modifiers, places, segments)})


# --- small SQL helpers: the only places where a construct could differ between engines ---

def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _member(haystack: str, needle: str) -> str:
    """``needle`` is one of the members joined in ``haystack`` (needle may not hold the separator)."""
    sep = f"CHR({ord(SEP)})"
    return f"(STRPOS({needle}, {sep}) = 0 AND STRPOS({haystack}, {sep} || {needle} || {sep}) > 0)"


def _count(cond: str) -> str:
    return f"CASE WHEN {cond} THEN 1 ELSE 0 END"


def _repeat(code: str, count: str) -> str:
    """``code`` ``count`` times, space-separated, or NULL (which CONCAT_WS skips)."""
    many = f"RTRIM(REPEAT({_lit(code + ' ')}, {count}))"
    return f"CASE WHEN {count} = 1 THEN {_lit(code)} WHEN {count} > 1 THEN {many} END"


def _single_bit(x: str) -> str:
    return f"({x} <> 0 AND ({x} & ({x} - 1)) = 0)"


# --- the rules ---

def _limit_rule(kind: str, slots: int) -> Callable[[PolicyTables], str]:
    def count(t: PolicyTables) -> str:
        if kind not in t.limit_kinds:
            return "0"
        terms = []
        for s in range(1, slots + 1):
            p = f"lim{s}_"
            applies = (f"permitted_th AND {p}kind = {LIMIT_KINDS[kind]} AND ({p}mask = 0 OR (mbit & {p}mask) <> 0)")
            if kind == "age":
                broken = f"member_age IS NOT NULL AND (member_age < {p}min_age OR member_age > {p}max_age)"
            elif kind == "provider-type":
                broken = f"provider_type IS NOT NULL AND NOT {_member(p + 'types', 'provider_type')}"
            elif kind == "established-patient":
                broken = "established_patient = FALSE"
            else:
                broken = f"units IS NOT NULL AND {p}max_units IS NOT NULL AND units > {p}max_units"
            terms.append(_count(f"{applies} AND {broken}"))
        return " + ".join(terms)
    return count


def _fixed(cond: str) -> Callable[[PolicyTables], str]:
    return lambda t: _count(cond)


# (reason code, count expression) in catalogue order. Every expression reads the
# columns of the ``features`` step of ``decision_sql``.
REASON_RULES: tuple[tuple[str, Callable[[PolicyTables], str]], ...] = (
    ("NOT_ON_TELEHEALTH_TABLE", _fixed("th AND seg_code IS NULL")),
    ("NOT_PERMITTED_VIA_TELEHEALTH", _fixed("th AND period_id IS NOT NULL AND NOT permitted")),
    ("OUTSIDE_EFFECTIVE_DATES", _fixed("th AND seg_code IS NOT NULL AND period_id IS NULL")),
    ("CONFLICTING_MODIFIERS", _fixed(f"th AND sig <> 0 AND NOT {_single_bit('sig')}")),
    ("MODALITY_NOT_INDICATED", _fixed("th AND sig = 0")),
    ("MODALITY_NOT_ALLOWED", _fixed("permitted_th AND mbit <> 0 AND (mbit & mod_mask) = 0")),
    ("MODIFIER_NOT_FOR_CLAIM_TYPE", lambda t: "n_bad_mod"),
    ("POS_NOT_ACCEPTED", _fixed("pos_th AND NOT pos_ok")),
    ("RCC_REQUIRED", _fixed("permitted_th AND claim_type = 'institutional' AND n_rcc > 0 AND rcc IS NULL")),
    ("RCC_NOT_ALLOWED", _fixed("permitted_th AND claim_type = 'institutional' AND n_rcc > 0 AND rcc IS NOT NULL "
                               f"AND NOT {_member('rccs', 'rcc')}")),
    ("AGE_OUTSIDE_LIMIT", lambda t: _limit_rule("age", t.limit_slots)(t)),
    ("PROVIDER_TYPE_NOT_ALLOWED", lambda t: _limit_rule("provider-type", t.limit_slots)(t)),
    ("ESTABLISHED_PATIENT_REQUIRED", lambda t: _limit_rule("established-patient", t.limit_slots)(t)),
    ("UNITS_OVER_LIMIT", lambda t: _limit_rule("units-per-day", t.limit_slots)(t)),
)

assert [c for c, _ in REASON_RULES] == sorted((c for c, _ in REASON_RULES), key=ORDER.__getitem__)
assert {c for c, _ in REASON_RULES} == {c for c, r in REASONS.items() if r.kind == "deny"}


KEY_BITS = 4  # each reason's count in 4 bits of reason_key: at most 15 (4 modifier slots; limit slots checked)


def decode_reasons(key: int) -> tuple[str, str]:
    """(outcome, reasons) of a compact ``reason_key``: the same text the full query gives."""
    if key == -1:
        return "not_telehealth", "NOT_A_TELEHEALTH_LINE"
    if key == 0:
        return "payable", "ON_TELEHEALTH_TABLE"
    codes = []
    for i, (code, _) in enumerate(REASON_RULES):
        codes.extend([code] * ((key >> (KEY_BITS * i)) & ((1 << KEY_BITS) - 1)))
    return "not_payable", " ".join(codes)


def decision_sql(tables: PolicyTables, lines: str = "lines", dialect: str = "duckdb",
                 extra: Sequence[str] = (), compact: bool = False) -> str:
    """One SELECT deciding every row of ``lines``; see the module docstring for the columns.

    ``extra`` names more columns of ``lines`` to pass through to the output. ``compact`` returns
    numbers instead of text, for engines that turn them into text once per distinct value:
    ``line_no``, ``reason_key`` (see ``decode_reasons``), ``seg_no`` (the row of the segments
    table whose ``period_id`` is the matched period) and ``mbit`` (the modality's bit, 0 for none).
    """
    if compact and tables.limit_slots >= 1 << KEY_BITS:
        raise ValueError(f"{tables.limit_slots} limits in one period: the compact reason key counts up to 15")
    seg_cols = [c for c, _ in tables.tables["segments"].columns if c != "code"]
    mods = range(1, MODIFIER_SLOTS + 1)
    ok = " ".join(f"WHEN {_lit(ct)} THEN m{{i}}.ok_{ct}" for ct in CLAIM_TYPES)
    bad_mod = " + ".join(_count(f"m{i}.modifier IS NOT NULL AND NOT (CASE l.claim_type {ok.format(i=i)} END)")
                         for i in mods)
    features = f"""
    SELECT l.*,
      ({' OR '.join(f'm{i}.modifier IS NOT NULL' for i in mods)}) AS has_th_mod,
      ({' | '.join(f'COALESCE(m{i}.bit, 0)' for i in mods)} | COALESCE(lm.bit, 0)) AS sig,
      ({bad_mod}) AS n_bad_mod,
      COALESCE(ps.marks_th, FALSE) AS pos_th,
      COALESCE(ps.accepted, TRUE) AS pos_ok,
      s.code AS seg_code, {', '.join('s.' + c for c in seg_cols)}
    FROM {lines} AS l
    {' '.join(f'LEFT JOIN modifiers AS m{i} ON m{i}.modifier = l.mod{i}' for i in mods)}
    LEFT JOIN places AS ps ON ps.pos = l.pos
    LEFT JOIN modalities AS lm ON lm.modality = l.modality
    LEFT JOIN segments AS s ON s.code = l.code AND l.day BETWEEN s.lo AND s.hi"""
    signals = f"""
    SELECT f.*,
      (has_th_mod OR pos_th OR modality IS NOT NULL) AS th,
      (has_th_mod OR pos_th OR modality IS NOT NULL) AND period_id IS NOT NULL AND permitted AS permitted_th,
      CASE WHEN {_single_bit('sig')} THEN sig ELSE 0 END AS mbit
    FROM features AS f"""
    counts = ",\n      ".join(f"{rule(tables)} AS n_{i}" for i, (_, rule) in enumerate(REASON_RULES))
    counted = f"""
    SELECT g.*,
      {counts}
    FROM signals AS g"""
    total = " + ".join(f"n_{i}" for i in range(len(REASON_RULES)))
    listed = ", ".join(_repeat(code, f"n_{i}") for i, (code, _) in enumerate(REASON_RULES))
    modality_name = " ".join(f"WHEN {bit} THEN {_lit(m)}" for m, bit in tables.modality_bits.items())
    query = f"""
WITH features AS ({features}
), signals AS ({signals}
), counted AS ({counted}
)
SELECT line_no, line_id, claim_id, code, day,
  CASE WHEN NOT th THEN 'not_telehealth' WHEN {total} > 0 THEN 'not_payable' ELSE 'payable' END AS outcome,
  CASE WHEN NOT th THEN 'NOT_A_TELEHEALTH_LINE' WHEN {total} = 0 THEN 'ON_TELEHEALTH_TABLE'
       ELSE CONCAT_WS(' ', {listed}) END AS reasons,
  CASE WHEN th THEN period_id END AS period,
  CASE WHEN th THEN CASE mbit {modality_name} END END AS modality,
  {_lit(tables.release)} AS release,
  {_lit(tables.policy_hash)} AS policy_hash{''.join(', ' + c for c in extra)}
FROM counted"""
    if compact:
        key = " + ".join(f"n_{i} * {1 << (KEY_BITS * i)}" for i in range(len(REASON_RULES)))
        query = f"""
WITH features AS ({features}
), signals AS ({signals}
), counted AS ({counted}
)
SELECT line_no,
  CASE WHEN NOT th THEN -1 ELSE {key} END AS reason_key,
  CASE WHEN th THEN seg_no END AS seg_no,
  CASE WHEN th THEN mbit ELSE 0 END AS mbit{''.join(', ' + c for c in extra)}
FROM counted"""
    if dialect == "duckdb":
        return query
    import sqlglot  # only a caller that asks for another dialect needs it

    return str(sqlglot.transpile(query, read="duckdb", write=dialect, pretty=True)[0])
