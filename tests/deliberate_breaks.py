"""Break the interpreter (or the loader, or the formatter) on purpose and show that a property catches it.

Each break is a small source edit applied in memory when pytest starts, never to the files:

    CMAP_BREAK=outside-ignores-end python -m pytest -p tests.deliberate_breaks tests/test_properties.py \
        -k never_payable_outside

``python -m tests.deliberate_breaks`` runs every break against the property that guards it (and the
unbroken code against all of them first) and prints the table that docs/testing.md shows.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Break:
    name: str
    module: str
    old: str
    new: str
    what: str
    property: str  # a -k expression selecting the property expected to fail


BREAKS = (
    Break("unlisted-as-listed", "cmap_policy.interpreter",
          "view = policy.views[rel.id].get(line.code)",
          "view = policy.views[rel.id].get(line.code) or next(iter(policy.views[rel.id].values()), None)",
          "an unlisted code is looked up as the first listed code",
          "test_unlisted_code_is_never_payable"),
    Break("outside-ignores-end", "cmap_policy.interpreter",
          "if before is not None and before.covers(day):",
          "if before is not None and before.effective <= day:",
          "a period's end date is ignored when finding the period in force",
          "test_listed_code_is_never_payable_outside_all_its_periods"),
    Break("audio-only-always-allowed", "cmap_policy.interpreter",
          "if modality is not None and modality not in period.modalities:",
          "if modality is not None and modality != 'audio-only' and modality not in period.modalities:",
          "audio-only is never checked against the period's modalities",
          "test_audio_only_is_payable_only_where_the_period_allows_it"),
    Break("not-permitted-as-permitted", "cmap_policy.interpreter",
          "elif not period.permitted:\n|if modality is not None and modality not in period.modalities:",
          "elif False:\n|if modality is not None and period.modalities and modality not in period.modalities:",
          "a not-permitted row is read as a permitted one (and its empty modalities as 'any')",
          "test_not_permitted_is_never_payable"),
    Break("cites-first-period", "cmap_policy.interpreter",
          "return Decision(outcome, tuple(reasons), period, modality,",
          "return Decision(outcome, tuple(reasons), view.periods[0] if view is not None else period, modality,",
          "the decision cites the code's first period instead of the one in force",
          "test_payable_means_exactly_one_period_covers_the_date_and_is_cited"),
    Break("reason-missing", "cmap_policy.interpreter",
          "if pos is not None and pos.marks_telehealth and not pos.accepted:",
          "if pos is not None and pos.marks_telehealth and not pos.accepted and not reasons:",
          "POS_NOT_ACCEPTED is left out when another denial was already found",
          "test_every_reason_given_is_true_and_none_that_applies_is_missing"),
    Break("reason-untrue", "cmap_policy.interpreter",
          "if lim.max_units is not None and line.units > lim.max_units:",
          "if lim.max_units is not None and line.units >= lim.max_units:",
          "UNITS_OVER_LIMIT is given for a line at exactly the limit",
          "test_every_reason_given_is_true_and_none_that_applies_is_missing"),
    Break("nondeterministic", "cmap_policy.interpreter",
          "attestations = tuple(a for a in program.attestations if a.applies(day, modality))",
          "attestations = tuple(sorted((a for a in program.attestations if a.applies(day, modality)), "
          "key=lambda a: __import__('random').random()))",
          "the attestations of a decision come in a random order",
          "test_the_same_line_gets_the_same_decision"),
    Break("cache-ignores-pos", "cmap_policy.interpreter",
          "line.pos if line.pos in self.program_places else None,",
          "None,",
          "the decision cache keys lines without their place of service",
          "test_the_order_of_lines_in_a_file_does_not_matter"),
    Break("modifiers-in-file-order", "cmap_policy.load.loader",
          'for m in sorted(data["modifiers"], key=lambda m: m["code"])}),',
          'for m in data["modifiers"]}),',
          "the loader keeps modifiers in file order (the bug the property found)",
          "test_the_order_of_files_and_keys_in_the_policy_does_not_matter"),
    Break("latest-table-always", "cmap_policy.interpreter",
          "view = policy.views[rel.id].get(line.code)",
          "view = policy.views[policy.latest.id].get(line.code)",
          "every release is decided against the latest release's table",
          "test_deciding_as_of_a_release_equals_deciding_on_the_tree_as_it_stood_then"),
    Break("successor-ends-period", "cmap_policy.interpreter",
          "if before is not None and before.covers(day):",
          "if before is not None and before.covers(day) and after is None:",
          "a period followed by a later one stops applying, so adding a period takes payment away",
          "test_a_release_that_only_adds_never_takes_payment_away"),
    Break("end-shown-inverted", "cmap_policy.load.loader",
          "if p.ended_in is not None and ordinal[p.ended_in] > rel.ordinal:",
          "if p.ended_in is not None and ordinal[p.ended_in] <= rel.ordinal:",
          "a release view hides the ends it published and shows the ones published later",
          "test_ending_a_period_never_makes_a_line_payable"),
    Break("meaning-check-missing", "cmap_policy.load.semantics",
          "if intro not in known.releases:",
          "if False:",
          "the unknown-release meaning check is gone, so the loader crashes on such a file",
          "test_mutated_policy_files_load_or_fail_with_located_problems"),
    Break("pointer-wrong", "cmap_policy.load.semantics",
          'yield doc.problem(f"{base}/end", f"the period ends',
          'yield doc.problem(f"{base}/ends", f"the period ends',
          "the end-before-effective problem points at a field that does not exist",
          "test_mutated_policy_files_load_or_fail_with_located_problems"),
    Break("category-pointer-wrong", "cmap_policy.load.semantics",
          'yield doc.problem("/category", f"unknown category',
          'yield doc.problem("/categories", f"unknown category',
          "the unknown-category problem points at a field that does not exist",
          "test_documents_generated_from_the_schemas_load_or_fail_with_located_problems"),
    Break("fmt-reverses-releases", "cmap_policy.authoring.fmt",
          "    if kind in HASHED_KINDS:\n        data = normalize(data)\n",
          "    if kind in HASHED_KINDS:\n        data = normalize(data)\n        if kind == 'releases':\n"
          "            data['releases'].reverse()\n",
          "the formatter reverses the releases, so another release becomes the latest",
          "test_formatting_is_idempotent_and_never_changes_a_decision"),
)


def apply(name: str) -> Break:
    """Re-execute the break's module with the edit, in place: every caller sees the broken functions."""
    brk = next(b for b in BREAKS if b.name == name)
    module = importlib.import_module(brk.module)
    source = Path(module.__file__).read_text(encoding="utf-8")  # type: ignore[arg-type]
    for old, new in zip(brk.old.split("|"), brk.new.split("|"), strict=True):  # "|" separates several edits
        if source.count(old) != 1:
            raise RuntimeError(f"break {name}: {old!r} is not in {brk.module} exactly once; update BREAKS")
        source = source.replace(old, new)
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # type: ignore[arg-type]
    return brk


def pytest_configure(config: object) -> None:
    name = os.environ.get("CMAP_BREAK")
    if name:
        apply(name)


def _run(env: dict[str, str], expression: str) -> tuple[bool, float]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider", "-p",
                           "tests.deliberate_breaks", "tests/test_properties.py", "-k", expression],
                          env=env, capture_output=True, text=True, check=False)
    return done.returncode == 0, time.monotonic() - start


def main() -> int:
    base = {**os.environ, "CMAP_PROPERTIES_NO_SHRINK": "1", "CMAP_POLICY_CACHE": "0"}
    base.setdefault("HYPOTHESIS_PROFILE", "dev")
    base.pop("CMAP_BREAK", None)
    ok = True
    print("| break | what it does | property | unbroken | broken |")
    print("|---|---|---|---|---|")
    for brk in BREAKS:
        passed_clean, _ = _run(base, brk.property)
        passed_broken, seconds = _run({**base, "CMAP_BREAK": brk.name}, brk.property)
        caught = passed_clean and not passed_broken
        ok &= caught
        print(f"| `{brk.name}` | {brk.what} | `{brk.property}` | {'passes' if passed_clean else 'FAILS'} | "
              f"{'fails (caught)' if not passed_broken else 'PASSES (not caught)'} in {seconds:.0f} s |", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
