"""``import_table``: a table into a policy folder as one release, checked before anything is written."""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import guard
from ...errors import FileRefusedError, PolicyError, Problem, TableError
from ...load.loader import load_checked
from ...resources import INSTALLED_COPY, is_installed_copy, working_policy_dir
from ..fmt import format_document
from .cells import cell_text
from .columns import DEFAULT_CATEGORY, ID_RE, Change, RowProblem, norm_heading, parse_column_map
from .merge import Correction, Target, canonical_text, describe_period, merge_code, period_changes, to_date
from .read import TableRow, parse_table, read_table


@dataclass
class ImportResult:
    """What an import did (or, with ``dry_run`` or errors, would have done)."""

    table: str
    policy: str
    release: str
    rows_read: int = 0
    rows: int = 0
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    notes: list[int] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    skipped_codes: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    unchanged_codes: int = 0
    created: list[str] = field(default_factory=list)  # what the import added to program.json and releases.json
    files: list[str] = field(default_factory=list)  # written, or to be written
    deleted: list[str] = field(default_factory=list)
    policy_problems: list[Problem] = field(default_factory=list)
    dry_run: bool = False
    allow_partial: bool = False
    written: bool = False

    @property
    def blocked(self) -> bool:
        """True when errors kept the import from writing (or would have, in a dry run)."""
        return bool(self.policy_problems) or (bool(self.errors) and not self.allow_partial)

    def counts(self) -> dict[str, int]:
        kinds = [c.kind for c in self.changes]
        return {
            "rows": self.rows, "errors": len(self.errors), "new_codes": kinds.count("new-code"),
            "changed_codes": len({c.code for c in self.changes if c.kind != "new-code"}),
            "unchanged_codes": self.unchanged_codes, "new_periods": kinds.count("new-period"),
            "ended_periods": kinds.count("ended"), "removed_periods": kinds.count("removed-period"),
            "corrected_starts": kinds.count("corrected-start"),
            "removed_codes": kinds.count("removed-code"), "files": len(self.files) + len(self.deleted),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table, "policy": self.policy, "release": self.release, "dry_run": self.dry_run,
            "written": self.written, "counts": self.counts(), "created": self.created,
            "changes": [c.as_dict() for c in self.changes],
            "errors": [e.as_dict() for e in self.errors], "warnings": [w.as_dict() for w in self.warnings],
            "policy_problems": [p.as_dict() for p in self.policy_problems], "note_rows": self.notes,
            "ignored_columns": self.ignored_columns, "skipped_codes": self.skipped_codes,
            "files": self.files, "deleted": self.deleted,
        }

    def render(self) -> str:
        c = self.counts()
        out = [f"{self.table} -> release {self.release} of {self.policy}: {self.rows_read} rows read, "
               f"{self.rows} usable, {c['errors']} with errors"]
        for e in sorted(self.errors, key=lambda e: (e.row or 0, e.code or "")):
            out.append(f"  error: {e}")
        for w in self.warnings:
            out.append(f"  warning: {w}")
        for p in self.policy_problems:
            out.append(f"  the result would not be a valid policy: {p}")
        if self.notes:
            out.append(f"  rows read as notes around the table, not as rows: {_ranges(self.notes)}")
        if self.ignored_columns:
            out.append(f"  columns not imported: {', '.join(self.ignored_columns)}")
        if self.skipped_codes:
            out.append(f"  left as they are (a row could not be read): {', '.join(self.skipped_codes)}")
        out.extend(f"  {line}" for line in self.created)
        if self.errors and not self.allow_partial and self.changes:
            out.append("with --allow-partial, the import would make these changes:")
        out.append(f"new codes {c['new_codes']}, changed codes {c['changed_codes']}, unchanged codes "
                   f"{c['unchanged_codes']}; new rows {c['new_periods']}, ended rows {c['ended_periods']}, "
                   f"removed rows {c['removed_periods']}, removed codes {c['removed_codes']}, corrected starts "
                   f"{c['corrected_starts']}")
        for ch in self.changes:
            out.append(f"  {_MARK.get(ch.kind, '~')} {ch.code}: {ch.text}")
        if self.written:
            out.append(f"wrote {len(self.files)} file(s), deleted {len(self.deleted)}")
        elif self.blocked:
            out.append("nothing was written: fix the problems above"
                       + ("" if self.policy_problems else ", or pass --allow-partial to import the readable rows "
                          "(codes with unreadable rows are left as they are)"))
        elif self.dry_run:
            out.append(f"dry run: nothing was written ({len(self.files)} file(s) to write, "
                       f"{len(self.deleted)} to delete)")
        else:
            out.append("nothing to write: the policy already says what the table says")
        return "\n".join(out)


_MARK = {"new-code": "+", "new-period": "+", "ended": "-", "removed-period": "-", "removed-code": "-"}


def _ranges(numbers: Sequence[int]) -> str:
    out: list[str] = []
    for n in sorted(numbers):
        if out and "-" not in out[-1].split(",")[-1] and int(out[-1]) == n - 1:
            out[-1] = f"{out[-1]}-{n}"
        elif out and "-" in out[-1] and int(out[-1].rsplit("-", 1)[1]) == n - 1:
            out[-1] = f"{out[-1].rsplit('-', 1)[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def _dump(doc: Any, kind: str) -> str:
    """The document in the canonical layout of ``cmap-policy fmt``: an import leaves nothing to reformat."""
    return format_document(doc, kind)


def _load_json(path: Path, root: Path) -> Any:
    """A file of the policy tree at ``root``, read as the loader reads it: a regular file inside the tree."""
    try:
        return guard.loads(guard.read_tree_file(path, root).decode("utf-8"))
    except (OSError, ValueError, FileRefusedError) as exc:
        raise TableError(f"{path.name}: cannot read it ({exc}); run `cmap-policy validate` on the policy") from None


def import_table(
    table: str | Path | bytes,
    *,
    release: str,
    policy: str | Path | None = None,
    columns: Mapping[str, str] | Iterable[str] | None = None,
    fmt: str | None = None,
    sheet: str | None = None,
    dry_run: bool = False,
    allow_partial: bool = False,
    date: dt.date | None = None,
    source: str | None = None,
    secondary: bool = False,
    category: str | None = None,
    cpt_descriptions: bool = False,
    name: str | None = None,
    source_url: str | None = None,
    covers_from: dt.date | None = None,
    coverage: str | None = None,
) -> ImportResult:
    """Read a telehealth table (xlsx, csv or json) into the policy folder ``policy`` as release ``release``.

    The release must be in releases.json, or ``date`` must be given to add it (last,
    published and effective on that date, implementing ``source``, which is added
    to program.json as an official table when it is not there). New codes become
    files; a changed row becomes a new period and ends the one before it the day
    before; a period missing from the table ends the day before the release takes
    effect. The official table (not ``secondary``) makes the release ``complete`` (``coverage`` says otherwise,
    for replaying an export of a partial release): it holds the whole
    table, for dates of service from ``covers_from`` (default: its effective date), and it gives the real
    start of rows an earlier source saw without their start (``start_known`` false), correcting them and
    recording each correction in the release. Nothing is written when a row cannot be read (unless ``allow_partial``),
    when the result would not load, or with ``dry_run``. Raises ``TableError`` when
    the table or the request cannot be used at all.
    """
    root = _policy_root(policy)
    colmap = parse_column_map(columns) if columns is not None and not isinstance(columns, Mapping) else \
        {norm_heading(k): v for k, v in (columns or {}).items()}
    raw = read_table(table, fmt=fmt, name=name, columns=colmap, sheet=sheet)
    before = _Files(_load_json(root / "program.json", root), _load_json(root / "releases.json", root))
    result = ImportResult(raw.name, str(root), release, dry_run=dry_run, allow_partial=allow_partial)
    if coverage not in (None, "complete", "partial"):
        raise TableError(f"coverage {coverage!r} is not complete or partial")
    after, target = _prepare(before, release, date, source, secondary, category, cpt_descriptions, raw.name, result,
                             source_url, covers_from, coverage)

    parsed = parse_table(raw, after.program, colmap)
    result.rows_read = sum(1 for _, cells in raw.rows if any(cell_text(c) for c in cells))
    result.rows = len(parsed.rows)
    result.errors = list(parsed.errors)
    result.notes = parsed.notes
    result.ignored_columns = parsed.ignored_columns
    if not parsed.readable:
        return result  # without a code or an effective date column no row can be read

    codes_dir = root / "codes"
    paths = {p.stem: p for p in sorted(codes_dir.glob("*.json"))} if codes_dir.is_dir() else {}
    docs = {code: _load_json(path, root) for code, path in paths.items()}
    _check_later_releases(docs, after.releases, release)
    by_code: dict[str, list[TableRow]] = {}
    for r in parsed.rows:
        by_code.setdefault(r.code, []).append(r)
    planned, corrections = _plan(docs, by_code, set(parsed.bad_codes), target, result)
    _check_category_and_source(after, planned, target, release, result, official=source is None and not secondary)
    _describe_changes(planned, docs, release, corrections, result)
    _record_corrections(after, release, planned, corrections)
    _finish(root, before, after, planned, paths, by_code, result)
    return result


def _finish(root: Path, before: _Files, after: _Files, planned: dict[str, dict[str, Any] | None],
            paths: dict[str, Path], by_code: dict[str, list[TableRow]], result: ImportResult) -> None:
    """Say which files change; unless a row failed (and partial imports are not allowed), or nothing changes,
    check the policy the files would make, then write them (not on a dry run)."""
    program_changed = canonical_text(after.program) != canonical_text(before.program)
    releases_changed = canonical_text(after.releases) != canonical_text(before.releases)
    result.files = ((["program.json"] if program_changed else []) + (["releases.json"] if releases_changed else [])
                    + [f"codes/{c}.json" for c, d in planned.items() if d is not None])
    result.deleted = [f"codes/{c}.json" for c, d in planned.items() if d is None]
    if result.errors and not result.allow_partial:
        return
    if not result.files and not result.deleted:
        return
    # Each file's text is made once: the scratch copy that is checked is byte for byte what is written.
    texts = {"program.json": _dump(after.program, "program"), "releases.json": _dump(after.releases, "releases"),
             **{f"codes/{c}.json": _dump(d, "code") for c, d in planned.items() if d is not None}}
    result.policy_problems = _validate(root, texts, paths, planned, by_code)
    if result.policy_problems or result.dry_run:
        return
    _write(root, texts, planned, program_changed, releases_changed)
    result.written = True


def _policy_root(policy: str | Path | None) -> Path:
    """The policy folder to import into (default: the working one); never the installed copy."""
    root = Path(policy) if policy is not None else working_policy_dir()
    if is_installed_copy(root):
        raise TableError(INSTALLED_COPY)
    if not (root / "program.json").is_file() or not (root / "releases.json").is_file():
        raise TableError(f"{root}: not a policy folder (it needs program.json and releases.json; codes/ may be empty)")
    return root


def _plan(docs: dict[str, dict[str, Any]], by_code: dict[str, list[TableRow]], skipped: set[str], target: Target,
          result: ImportResult) -> tuple[dict[str, dict[str, Any] | None], dict[str, list[Correction]]]:
    """(each code's new document, None to delete it, where it changes; each code's corrections of unknown starts).

    A code whose rows cannot be merged is skipped, with its errors in ``result``."""
    planned: dict[str, dict[str, Any] | None] = {}
    corrections: dict[str, list[Correction]] = {}
    for code in sorted(set(docs) | set(by_code)):
        if code in skipped:
            continue
        doc = docs.get(code)
        new_doc, errs, warns, fixed = merge_code(doc, code, by_code.get(code, []), target)
        corrections[code] = fixed
        result.warnings.extend(warns)
        if errs:
            result.errors.extend(errs)
            skipped.add(code)
        elif doc is None or new_doc is None or canonical_text(new_doc) != canonical_text(doc):
            planned[code] = new_doc
    result.skipped_codes = sorted(c for c in skipped if c in docs or c in by_code)
    result.unchanged_codes = sum(1 for c in set(docs) | set(by_code) if c not in planned and c not in skipped)
    return planned, corrections


def _check_category_and_source(after: _Files, planned: dict[str, dict[str, Any] | None], target: Target,
                               release: str, result: ImportResult, *, official: bool) -> None:
    """Add the default category if a new code needs it; warn when an official import cites a secondary source."""
    if any(d is not None and d["category"] == DEFAULT_CATEGORY[0] for d in planned.values()) and \
            DEFAULT_CATEGORY[0] not in {c["id"] for c in after.program["categories"]}:
        after.program["categories"].append({"id": DEFAULT_CATEGORY[0], "name": DEFAULT_CATEGORY[1]})
        result.created.append(f"program.json: added category {DEFAULT_CATEGORY[0]} for new codes without one "
                              "(give --category or a Category column to choose)")
    if official and any(
            s["id"] == target.source and s["secondary"] for s in after.program["sources"]) and any(
            p["introduced_in"] == release and p["citation"]["source"] == target.source
            for d in planned.values() if d is not None for p in d["periods"]):
        result.warnings.append(RowProblem(None, None, f"new rows cite {target.source}, the release's source, which "
                                          "is secondary; if this table is the official one, give --source ID (a new "
                                          "id is added to program.json as the official table)"))


def _describe_changes(planned: dict[str, dict[str, Any] | None], docs: dict[str, dict[str, Any]], release: str,
                      corrections: dict[str, list[Correction]], result: ImportResult) -> None:
    for code, new_doc in planned.items():
        if code not in docs:
            assert new_doc is not None
            result.changes.append(Change(code, "new-code", "new code: " + "; ".join(
                describe_period(p) for p in new_doc["periods"])))
        elif new_doc is None:
            result.changes.append(Change(code, "removed-code", f"removed: release {release} had added it and the "
                                         "table no longer has it"))
        else:
            result.changes.extend(period_changes(code, docs[code]["periods"], new_doc["periods"],
                                                 corrections.get(code, ())))


def _record_corrections(after: _Files, release: str, planned: dict[str, dict[str, Any] | None],
                        corrections: dict[str, list[Correction]]) -> None:
    """The release records each row start it corrected."""
    rel = next(r for r in after.releases["releases"] if r["id"] == release)
    # corrections this release made on an earlier import stay: the rows they dated are no longer unknown
    fixed_all = {(c["code"], c["was"]): c for c in rel.get("corrections", [])}
    fixed_all.update({(c.code, c.was): c.as_dict() for code in sorted(planned) for c in corrections.get(code, ())})
    if fixed_all:
        rel["corrections"] = [fixed_all[k] for k in sorted(fixed_all)]


def _write(root: Path, texts: dict[str, str], planned: dict[str, dict[str, Any] | None], program_changed: bool,
           releases_changed: bool) -> None:
    """Write the checked texts. program.json and releases.json first: a new release or source is harmless on its
    own, a code that names a release not yet written is not."""
    if program_changed:
        _write_atomic(root / "program.json", texts["program.json"])
    if releases_changed:
        _write_atomic(root / "releases.json", texts["releases.json"])
    codes_dir = root / "codes"
    codes_dir.mkdir(exist_ok=True)
    for code, doc in planned.items():
        if doc is None:
            (codes_dir / f"{code}.json").unlink()
        else:
            _write_atomic(codes_dir / f"{code}.json", texts[f"codes/{code}.json"])


@dataclass
class _Files:
    program: dict[str, Any]
    releases: dict[str, Any]


def _prepare(before: _Files, release: str, date: dt.date | None, source: str | None, secondary: bool,
             category: str | None, cpt_descriptions: bool, table_name: str, result: ImportResult,
             source_url: str | None = None, covers_from: dt.date | None = None,
             coverage: str | None = None) -> tuple[_Files, Target]:
    """program and releases with what the import needs added (a release, a source), and where rows go."""
    program = copy.deepcopy(before.program)
    releases = copy.deepcopy(before.releases)
    rels = releases["releases"]
    rel = next((r for r in rels if r["id"] == release), None)
    if source is not None and not ID_RE.match(source):
        raise TableError(f"--source {source!r}: an id is letters, digits, dots, dashes and underscores")
    if rel is None:
        if date is None:
            known = ", ".join(r["id"] for r in rels)
            raise TableError(f"release {release!r} is not in releases.json (known: {known}); give --date to add it "
                             "as the latest release, or add it to releases.json first")
        if not ID_RE.match(release) or len(release) > 64:
            raise TableError(f"release id {release!r}: use letters, digits, dots, dashes and underscores")
        if rels and date < to_date(rels[-1]["published"]):
            raise TableError(f"--date {date} is before the latest release {rels[-1]['id']!r} "
                             f"(published {rels[-1]['published']}); releases are listed oldest first")
        rel = {"id": release, "published": date.isoformat(), "effective": date.isoformat(),
               "implements": [source or release], "summary": f"Telehealth table imported from {table_name}.",
               "coverage": "partial"}
        rels.append(rel)
        result.created.append(f"releases.json: added release {release} (published and effective {date})")
    elif date is not None and date.isoformat() != rel["effective"]:
        raise TableError(f"release {release!r} already exists, effective {rel['effective']}; --date {date} "
                         "differs: leave --date out, or name a new release")
    coverage = coverage or ("partial" if secondary else "complete")
    if rel.get("coverage") != coverage:
        result.created.append(f"releases.json: release {release} holds "
                              + ("the rows the table names (partial)" if secondary else "the whole table (complete)"))
    rel["coverage"] = coverage
    if coverage == "complete" and covers_from is not None:
        rel["covers_from"] = covers_from.isoformat()
    else:
        rel.pop("covers_from", None)
        if covers_from is not None:
            raise TableError("--covers-from is for a table that holds the whole table (--coverage complete, the "
                             "default unless --secondary)")
    src = source or rel["implements"][0]
    listed = {s["id"]: s for s in program["sources"]}
    if src not in listed:
        published = rel["published"]
        url = source_url or _official_url(program)
        if url is None:
            raise TableError(f"source {src!r} is new: give --source-url, the address where the table can be read "
                             "(program.json names no official table to take it from)")
        program["sources"].append({
            "id": src,
            "title": f"{program['program']['name']}: telehealth table of {published}, imported from {table_name}",
            "url": url,
            "kind": "secondary-reading" if secondary else "official-table",
            "secondary": secondary,
            "published": published,
            "note": "Imported with cmap-policy import.",
        })
        result.created.append(f"program.json: added source {src} ({'secondary' if secondary else 'official table'})")
    if src not in rel["implements"]:
        rel["implements"].append(src)
        result.created.append(f"releases.json: release {release} now also implements {src}")
    if category is not None and category not in {c["id"] for c in program["categories"]}:
        known = ", ".join(c["id"] for c in program["categories"])
        raise TableError(f"--category {category!r} is not in program.json categories ({known})")
    return _Files(program, releases), Target(release, to_date(rel["effective"]), src, cpt_descriptions,
                                              category or DEFAULT_CATEGORY[0], corrects_starts=not secondary,
                                              complete=coverage == "complete")


def _official_url(program: Mapping[str, Any]) -> str | None:
    """The address of the official table program.json names (program.official_table), if it names one."""
    cite = program["program"].get("official_table")
    found = next((s for s in program["sources"] if cite and s["id"] == cite["source"]), None)
    return str(found["url"]) if found else None


def _check_later_releases(docs: Mapping[str, dict[str, Any]], releases: Mapping[str, Any], release: str) -> None:
    ids = [r["id"] for r in releases["releases"]]
    later = set(ids[ids.index(release) + 1:])
    if not later:
        return
    for code, doc in docs.items():
        for p in doc.get("periods", []):
            if p.get("introduced_in") in later or p.get("ended_in") in later:
                raise TableError(f"release {release!r} is followed by {ids[-1]!r}, and codes/{code}.json already has "
                                 f"rows of a later release: import into the latest release, or add a new one "
                                 "with --date")


def _validate(root: Path, texts: Mapping[str, str], paths: Mapping[str, Path],
              planned: Mapping[str, dict[str, Any] | None], by_code: Mapping[str, list[TableRow]]) -> list[Problem]:
    """Load the policy as it would be after the import (in a scratch copy); its problems, mapped to rows."""
    with tempfile.TemporaryDirectory(prefix="cmap-import-") as tmp:
        scratch = Path(tmp) / root.name
        (scratch / "codes").mkdir(parents=True)
        (scratch / "program.json").write_text(texts["program.json"], encoding="utf-8")
        (scratch / "releases.json").write_text(texts["releases.json"], encoding="utf-8")
        for code, path in paths.items():
            if code not in planned:
                shutil.copyfile(path, scratch / "codes" / path.name)
        for code, doc in planned.items():
            if doc is not None:
                (scratch / "codes" / f"{code}.json").write_text(texts[f"codes/{code}.json"], encoding="utf-8")
        try:
            # Every check of load_policy, without its cache: the scratch copy is gone in a moment.
            load_checked(scratch)
        except PolicyError as err:
            return [_row_of(p, planned, by_code) for p in err.problems]
    return []


def _row_of(problem: Problem, planned: Mapping[str, dict[str, Any] | None],
            by_code: Mapping[str, list[TableRow]]) -> Problem:
    """The problem with the table row that produced the period it names, when there is one."""
    m = re.search(r"codes/([^/]+)\.json$", problem.file)
    pm = re.match(r"^/periods/(\d+)", problem.pointer)
    if not m or not pm:
        return problem
    doc = planned.get(m.group(1))
    if doc is None or int(pm.group(1)) >= len(doc["periods"]):
        return problem
    eff = doc["periods"][int(pm.group(1))]["effective"]
    row = next((r for r in by_code.get(m.group(1), []) if r.effective.isoformat() == eff), None)
    if row is None:
        return problem
    return Problem(problem.file, problem.pointer, f"table row {row.number}: {problem.message}", problem.rule,
                   problem.hint, problem.line, problem.col)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.import-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


