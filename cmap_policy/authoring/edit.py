"""Edit commands: change the policy without writing JSON by hand.

Every edit works on a copy: it applies the change in memory, writes the
changed files into a temporary copy of the whole tree, loads that copy with
``load_policy`` (the schemas and every meaning check), and only then writes the
changed files, in canonical form, into the real tree. An edit that would leave
the policy invalid raises ``EditError`` with the reasons, and writes nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import guard
from ..errors import EditError, FileRefusedError, PolicyError
from ..lines import CODE_RE
from ..load.loader import load_policy
from ..model import Policy
from ..resources import INSTALLED_COPY, is_installed_copy, working_policy_dir
from .fmt import format_document, write_text

SOURCE_KINDS = ("statute", "bulletin", "executive-order", "web-page", "official-table", "secondary-reading",
                "code-set", "payer-notice", "code-list")



@dataclass(frozen=True)
class EditResult:
    """What an edit wrote, and the policy as it now stands."""

    written: tuple[Path, ...]
    message: str
    policy: Policy


class _Tree:
    """A policy folder as JSON data; ``changed`` remembers which files an edit touched."""

    def __init__(self, root: Path) -> None:
        if not (root / "program.json").is_file() or not (root / "releases.json").is_file():
            raise EditError(f"{root} is not a policy folder (it needs program.json, releases.json and codes/); "
                            "pass --policy with the folder that holds them")
        self.root = root
        self.docs: dict[str, Any] = {}
        self.changed: set[str] = set()

    def read(self, rel: str) -> Any:
        if rel not in self.docs:
            path = self.root / rel
            try:  # as the loader reads it: a regular file inside the tree, within the limits
                self.docs[rel] = guard.loads(guard.read_tree_file(path, self.root).decode("utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, FileRefusedError) as exc:
                raise EditError(f"{self.root.name}/{rel}: cannot read it ({exc}); fix the file by hand, then run "
                                "`cmap-policy validate`") from None
        return self.docs[rel]

    def exists(self, rel: str) -> bool:
        return rel in self.docs or (self.root / rel).is_file()

    def put(self, rel: str, data: Any) -> None:
        self.docs[rel] = data
        self.changed.add(rel)

    @staticmethod
    def kind(rel: str) -> str:
        return "code" if rel.startswith("codes/") else rel.removesuffix(".json")

    def commit(self, what: str) -> EditResult:
        """Validate the tree with the changes applied, then write the changed files; or raise and write nothing."""
        texts = {rel: format_document(self.docs[rel], self.kind(rel)) for rel in sorted(self.changed)}
        with tempfile.TemporaryDirectory(prefix="cmap-policy-edit-") as tmp:
            trial = Path(tmp) / self.root.name  # the same name, so problems name the files as the author sees them
            shutil.copytree(self.root, trial, symlinks=True)  # a link is copied as a link, for the loader to judge
            for rel, text in texts.items():
                (trial / rel).parent.mkdir(parents=True, exist_ok=True)
                (trial / rel).write_text(text, encoding="utf-8")
            try:
                load_policy(trial)
            except PolicyError as err:
                raise EditError(f"not written: {what} would leave the policy with {len(err.problems)} problem(s):",
                                err.problems) from None
        written = []
        for rel, text in texts.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, text)
            written.append(path)
        return EditResult(tuple(written), what, load_policy(self.root))


def _root(policy: str | Path | None) -> Path:
    root = Path(policy) if policy is not None else working_policy_dir()
    if is_installed_copy(root):
        raise EditError(INSTALLED_COPY)
    return root


def _iso(value: dt.date | str, name: str) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise EditError(f"{name}: {value!r} is not a date in the form YYYY-MM-DD") from None


def _release_ids(tree: _Tree) -> list[str]:
    return [r["id"] for r in tree.read("releases.json")["releases"]]


def _known_release(tree: _Tree, release: str) -> None:
    ids = _release_ids(tree)
    if release not in ids:
        raise EditError(f"unknown release {release!r} (known: {', '.join(ids)}); start it first with "
                        f"`cmap-policy release new {release} --date ... --source ... --summary ...`")


def release_new(release_id: str, *, date: dt.date | str, source: Sequence[str], summary: str,
                effective: dt.date | str | None = None, dates_note: str | None = None,
                source_title: str | None = None, source_url: str | None = None, source_kind: str = "bulletin",
                secondary: bool = False, coverage: str = "partial", covers_from: dt.date | str | None = None,
                policy: str | Path | None = None) -> EditResult:
    """Add release ``release_id`` at the end of releases.json, implementing the ``source`` ids.

    A source id that program.json does not list yet is added to it when ``source_title`` and
    ``source_url`` are given (one new source per release). ``coverage`` says what the release holds:
    ``partial`` (the rows it names: a bulletin, an Important Message) or ``complete`` (the whole table,
    for dates of service from ``covers_from``, default its effective date).
    """
    if coverage not in ("partial", "complete"):
        raise EditError(f"coverage {coverage!r} is not partial or complete")
    if covers_from is not None and coverage != "complete":
        raise EditError("--covers-from is for a release that holds the whole table (--coverage complete)")
    tree = _Tree(_root(policy))
    releases = copy.deepcopy(tree.read("releases.json"))
    existing = {r["id"]: r for r in releases["releases"]}
    if release_id in existing:
        raise EditError(f"release {release_id!r} already exists (published {existing[release_id]['published']}); "
                        "choose another id")
    if not source:
        raise EditError("give at least one --source: the id of the bulletin, Important Message or table the "
                        "release implements")
    if not summary.strip():
        raise EditError("give a --summary: what the release changes, in a sentence or two")
    program = copy.deepcopy(tree.read("program.json"))
    known = {s["id"] for s in program["sources"]}
    unknown = [s for s in source if s not in known]
    if unknown:
        if len(unknown) > 1 or not (source_title and source_url):
            raise EditError(f"unknown source {', '.join(repr(s) for s in unknown)}: add it to sources in program.json, "
                            "or pass --source-title and --source-url (and --source-kind, --secondary) to add one "
                            f"new source now (known: {', '.join(sorted(known))})")
        if source_kind not in SOURCE_KINDS:
            raise EditError(f"--source-kind {source_kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        program["sources"].append({"id": unknown[0], "title": source_title, "url": source_url, "kind": source_kind,
                                   "secondary": secondary, "published": _iso(date, "--date")})
        tree.put("program.json", program)
    rel: dict[str, Any] = {"id": release_id, "published": _iso(date, "--date"),
                           "effective": _iso(effective if effective is not None else date, "--effective"),
                           "implements": list(dict.fromkeys(source)), "summary": summary.strip(),
                           "coverage": coverage}
    if covers_from is not None:
        rel["covers_from"] = _iso(covers_from, "--covers-from")
    if dates_note:
        rel["dates_note"] = dates_note
    releases["releases"].append(rel)
    tree.put("releases.json", releases)
    return tree.commit(f"release {release_id} started")


def _code_file(code: str) -> str:
    return f"codes/{code}.json"


def _check_code(code: str) -> str:
    code = code.strip().upper()
    if not CODE_RE.match(code):
        raise EditError(f"{code!r} is not a procedure code (five characters: a CPT code such as 90834 or a HCPCS "
                        "code such as T1016)")
    return code


def _open_period(doc: dict[str, Any]) -> dict[str, Any] | None:
    open_ = [p for p in doc["periods"] if "end" not in p]
    return max(open_, key=lambda p: p["effective"]) if open_ else None


def _citation(source: str, section: str | None) -> dict[str, Any]:
    cite: dict[str, Any] = {"source": source}
    if section:
        cite["section"] = section
    return cite


def _default_guideline(status: str, modalities: Sequence[str]) -> str:
    if status != "permitted":
        return "Not permitted via telehealth."
    return f"Payable via telehealth by {' or '.join(modalities)}."


def code_add(code: str, *, effective: dt.date | str, release: str, source: str, modality: Sequence[str] = (),
             status: str = "permitted", system: str | None = None, description: str | None = None,
             category: str | None = None, guideline: str | None = None, section: str | None = None,
             rcc: Sequence[str] = (), dates_note: str | None = None,
             policy: str | Path | None = None) -> EditResult:
    """Put ``code`` on the table from ``effective``, as published in ``release``: a new file or a new period."""
    code = _check_code(code)
    tree = _Tree(_root(policy))
    _known_release(tree, release)
    rel = _code_file(code)
    if status not in ("permitted", "not-permitted"):
        raise EditError(f"--status {status!r} is not permitted or not-permitted")
    if status == "permitted" and not modality:
        raise EditError("give at least one --modality (audio-video, audio-only) for a permitted row")
    if status == "not-permitted" and modality:
        raise EditError("a not-permitted row allows no modality: leave out --modality")
    if tree.exists(rel):
        doc = copy.deepcopy(tree.read(rel))
        current = _open_period(doc)
        if current is not None:
            raise EditError(f"{code} is already on the table from {current['effective']} (a row with no end date). "
                            f"To change it from a date use `cmap-policy code set {code} --effective ...`; to end it "
                            f"use `cmap-policy code end {code} --date ...`")
        for name, value in (("system", system), ("description", description), ("category", category)):
            if value is not None:
                doc[name] = value
    else:
        missing = [f"--{n}" for n, v in (("description", description), ("category", category)) if not v]
        if missing:
            raise EditError(f"{code} is a new code: give {' and '.join(missing)} (a short description in your own "
                            "words, never the AMA's CPT text; a category id from program.json)")
        doc = {"$schema": "../../schema/code.schema.json", "code": code,
               "system": system or ("CPT" if code[0].isdigit() else "HCPCS"), "description": description,
               "category": category, "periods": []}
    period: dict[str, Any] = {"effective": _iso(effective, "--effective"), "status": status,
                              "modalities": list(dict.fromkeys(modality)),
                              "guideline": guideline if guideline is not None else _default_guideline(status, modality),
                              "citation": _citation(source, section), "introduced_in": release}
    if rcc:
        period["revenue_center_codes"] = list(dict.fromkeys(rcc))
    if dates_note:
        period["dates_note"] = dates_note
    doc["periods"].append(period)
    tree.put(rel, doc)
    return tree.commit(f"{code} added from {period['effective']} in release {release}")


def code_end(code: str, *, date: dt.date | str, release: str, dates_note: str | None = None,
             removed: bool = False, policy: str | Path | None = None) -> EditResult:
    """End ``code``'s open row on ``date`` (the last date of service it covers), as published in ``release``.

    ``removed``: the source says the code leaves the table then, so that until a later row a line is not
    payable; without it, what follows the row is what later sources say (or, where none does, unknown).
    """
    code = _check_code(code)
    tree = _Tree(_root(policy))
    _known_release(tree, release)
    rel = _code_file(code)
    if not tree.exists(rel):
        raise EditError(f"{code} is not on the table (there is no {tree.root.name}/{rel}); nothing to end")
    doc = copy.deepcopy(tree.read(rel))
    current = _open_period(doc)
    last = _iso(date, "--date")
    if current is None:
        ends = max(doc["periods"], key=lambda p: p["effective"])
        raise EditError(f"{code} has no open row: its last row ended on {ends.get('end')} (release "
                        f"{ends.get('ended_in')}); nothing to end")
    if last < current["effective"]:
        raise EditError(f"{code}'s open row starts on {current['effective']}, after {last}: a row cannot end before "
                        "it starts. --date is the last date of service the row covers")
    current["end"] = last
    current["ended_in"] = release
    if removed:
        current["removed"] = True
    if dates_note:
        current["dates_note"] = dates_note
    tree.put(rel, doc)
    return tree.commit(f"{code} ended on {last} in release {release}")


def code_set(code: str, *, effective: dt.date | str, release: str, modality: Sequence[str] | None = None,
             status: str | None = None, guideline: str | None = None, rcc: Sequence[str] | None = None,
             source: str | None = None, section: str | None = None, clear_limits: bool = False,
             dates_note: str | None = None, policy: str | Path | None = None) -> EditResult:
    """Change ``code`` from ``effective``: end its open row the day before and start a new one with the changes.

    What is not given is copied from the open row, but not its dates: the new row starts on ``effective``, a
    start the source gives (so an unknown start of the open row is not copied). ``modality`` lists every
    modality the new row allows (the open row's undetermined modalities are then dropped: the source has
    spoken). ``rcc`` replaces the revenue center codes (an empty sequence removes them); ``clear_limits`` drops
    the row's limits.
    """
    code = _check_code(code)
    tree = _Tree(_root(policy))
    _known_release(tree, release)
    rel = _code_file(code)
    if not tree.exists(rel):
        raise EditError(f"{code} is not on the table (there is no {tree.root.name}/{rel}); add it with "
                        f"`cmap-policy code add {code} ...`")
    if all(v is None for v in (modality, status, guideline, rcc, source, section)) and not clear_limits:
        raise EditError("nothing to change: give at least one of --modality, --status, --guideline, --rcc, "
                        "--no-rcc, --source, --section, --clear-limits")
    doc = copy.deepcopy(tree.read(rel))
    current = _open_period(doc)
    start = _iso(effective, "--effective")
    if current is None:
        raise EditError(f"{code} has no open row to change; to list it again use `cmap-policy code add {code} ...`")
    if start <= current["effective"]:
        raise EditError(f"{code}'s open row starts on {current['effective']}: the new row must start after it "
                        f"(--effective {start}), because the open row ends the day before the new one starts")
    # The new row starts on the date the source gives (start_known is the old row's own), and its dates note,
    # end and removal are the old row's too.
    new = {k: copy.deepcopy(v) for k, v in current.items()
           if k not in ("end", "ended_in", "dates_note", "start_known", "removed")}
    new["effective"] = start
    new["introduced_in"] = release
    if status is not None:
        if status not in ("permitted", "not-permitted"):
            raise EditError(f"--status {status!r} is not permitted or not-permitted")
        new["status"] = status
    if new["status"] == "not-permitted":
        if modality:
            raise EditError("a not-permitted row allows no modality: leave out --modality")
        new["modalities"] = []
        new.pop("revenue_center_codes", None)
        new.pop("limits", None)
    elif modality is not None:
        new["modalities"] = list(dict.fromkeys(modality))
    if new["status"] == "not-permitted" or modality is not None:
        # the source states the row's modalities: those it does not allow are not allowed, not unknown
        new.pop("undetermined_modalities", None)
    if new["status"] == "permitted" and not new["modalities"]:
        raise EditError("a permitted row needs at least one --modality (audio-video, audio-only)")
    if guideline is not None:
        new["guideline"] = guideline
    elif status is not None or modality is not None:
        old_default = _default_guideline(current["status"], current["modalities"])
        if current.get("guideline") == old_default:
            new["guideline"] = _default_guideline(new["status"], new["modalities"])
    if rcc is not None:
        if rcc:
            new["revenue_center_codes"] = list(dict.fromkeys(rcc))
        else:
            new.pop("revenue_center_codes", None)
    if clear_limits:
        new.pop("limits", None)
    if source is not None:
        new["citation"] = _citation(source, section)
    elif section is not None:
        new["citation"] = {**new["citation"], "section": section}
    if dates_note:
        new["dates_note"] = dates_note
    current["end"] = (dt.date.fromisoformat(start) - dt.timedelta(days=1)).isoformat()
    current["ended_in"] = release
    doc["periods"].append(new)
    tree.put(rel, doc)
    return tree.commit(f"{code} changed from {start} in release {release}")
