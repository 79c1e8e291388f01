"""Coverage-guided fuzz targets (atheris, on libFuzzer) for everything that reads untrusted bytes.

Targets (each a function of one input, ``bytes``):

- ``jsonl``   JSON Lines, read by the interpreter and by the batch engine's reader;
- ``csv``     CSV, read by both engines (the batch engine's Arrow fast path and its line-by-line path);
- ``stdin``   any bytes, the format guessed as for standard input;
- ``records`` a record built from the input (keys and values of any type, nested, huge, surrogates), as
              the Python API takes it;
- ``x12``     an X12 837 interchange;
- ``policy``  one file of a small policy tree replaced by the input, loaded with every check.

Each checks the promises of docs/reliability.md (tests/hostile.py states them): no exception but the
documented ones (a ``LineError`` per line, a ``PolicyError`` listing located problems); lines in =
decisions + errors; both engines read a file alike. Anything else (another exception, a failed
assertion, an input that takes more than ``PER_INPUT_SECONDS``) is a crash: libFuzzer saves the input.

Run them (the test suite runs each for a few seconds, tests/test_fuzz.py)::

    python -m tests.fuzz all --seconds 10            # every target, 10 s each
    python -m tests.fuzz csv x12 --minutes 10        # some targets, longer
    python -m tests.fuzz all --minutes 10 --work fuzz-work   # keep the grown corpora and crashes
    python -m tests.fuzz csv --reproduce fuzz-work/csv/crashes/crash-...   # one saved input, no atheris

For each target it prints the executions, their rate, the crashes (distinct by exception and place,
the run carrying on after each one) and the size of the corpus it grew. Seeds come from
tests/fuzz_corpus/<target>/ and, for X12, from tests/data/x12/.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = HERE / "fuzz_corpus"
EXTRA_SEEDS = {"x12": [HERE / "data" / "x12"]}
TARGETS = ("jsonl", "csv", "stdin", "records", "x12", "policy")
PER_INPUT_SECONDS = 20  # an input slower than this is a hang, reported as a crash
MAX_LEN = {"policy": 16_384, "x12": 16_384}  # bytes per input; the others take libFuzzer's default (4 KB)


# --- the targets (run in a child process, with cmap_policy instrumented) -------------------------------------------

def _targets() -> dict[str, Callable[[bytes], None]]:
    """The targets, built after cmap_policy is imported (under atheris's instrumentation in a fuzz run)."""
    from cmap_policy import api
    from cmap_policy.errors import InputError, LineError, PolicyError
    from cmap_policy.load.loader import load_checked, load_policy
    from cmap_policy.model import ClaimLine
    from cmap_policy.testing import bundled_tree, write_tree
    from cmap_policy.x12 import isa_problem, parse_x12

    from .hostile import (
        assert_all_lines_accounted,
        assert_x12_lines_accounted,
        batch_reads,
        interpreter_reads,
    )

    policy = load_policy()
    program = policy.program

    def both_engines(fmt: str) -> Callable[[bytes], None]:
        def target(data: bytes) -> None:
            mine = interpreter_reads(data, program, fmt)
            assert_all_lines_accounted(mine, data, header=fmt == "csv")
            assert batch_reads(data, program, fmt) == mine
            assert batch_reads(data, program, fmt, block_bytes=32) == mine
        return target

    def stdin(data: bytes) -> None:
        numbers = []
        try:
            for number, item in api.read_stream(io.BytesIO(data), program):  # as eval reads standard input
                assert isinstance(item, (ClaimLine, LineError))
                numbers.append(number)
        except InputError:  # bytes that look like Parquet or Arrow and are not: the whole input is refused
            assert data.startswith((b"PAR1", b"ARROW1", b"\xff\xff\xff\xff")), data[:8]
            return
        assert numbers == sorted(set(numbers))  # each line once, in order

    def records(data: bytes) -> None:
        import atheris

        fdp = atheris.FuzzedDataProvider(data)
        recs = [_record(fdp) for _ in range(fdp.ConsumeIntInRange(1, 4))]
        got = list(api.eval_lines(recs, policy=policy))
        assert [r.number for r in got] == list(range(1, len(recs) + 1))
        for res in got:
            assert (res.decision is None) == (res.error is not None)
            json.dumps(res.as_dict(), ensure_ascii=False).encode("utf-8")  # every result can be written out

    def x12(data: bytes) -> None:
        text = data.decode("latin-1")
        got = list(parse_x12(text, program))
        assert all(isinstance(item, (ClaimLine, LineError)) for _, item in got)
        if text.startswith("ISA") and isa_problem(text) is None:
            assert_x12_lines_accounted(got, text)

    tmp = Path(tempfile.mkdtemp(prefix="cmap-fuzz-policy-"))
    base = bundled_tree()
    base.codes = {c: base.codes[c] for c in ("T1016", "97153")}
    root = write_tree(base, tmp / "policy")
    names = ("codes/T1016.json", "program.json", "releases.json", "codes/97153.json")
    originals = {n: (root / n).read_bytes() for n in names}

    def policy_file(data: bytes) -> None:
        name = names[data[0] % len(names)] if data else names[0]
        for n, content in originals.items():
            (root / n).write_bytes(data[1:] if n == name else content)
        try:
            load_checked(root)
        except PolicyError as err:
            assert err.problems
            for problem in err.problems:
                assert problem.file.startswith("policy/") and problem.message, problem
                assert problem.line is not None, problem  # every file here exists, so has a line to name

    return {"jsonl": both_engines("jsonl"), "csv": both_engines("csv"), "stdin": stdin, "records": records,
            "x12": x12, "policy": policy_file}


FIELD_NAMES = ("code", "date", "modifiers", "pos", "claim_type", "rcc", "modality", "member_age", "provider_type",
               "units", "established_patient", "line_id", "claim_id")


def _value(fdp: Any, depth: int = 0) -> Any:
    """A value of any kind a caller might pass: text (surrogates and all), numbers of any size, nesting."""
    kind = fdp.ConsumeIntInRange(0, 10)
    if kind == 0:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 12))
    if kind == 1:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 12))
    if kind == 2:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 2500))  # up to 20,000 bits: past 4,300 digits
    if kind == 3:
        return fdp.ConsumeRegularFloat() if fdp.ConsumeBool() else fdp.ConsumeFloat()
    if kind == 4:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8))
    if kind == 5:
        value: Any = fdp.ConsumeUnicode(2)
        for i in range(fdp.ConsumeIntInRange(0, 3000)):
            value = [value] if i % 2 else {"k": value}
        return value
    if kind == 6 and depth < 2:
        return [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 5))]
    if kind == 7:
        return None if fdp.ConsumeBool() else fdp.ConsumeBool()
    if kind == 8:
        return fdp.PickValueInList(["T1016", "97153", "2026-01-05", "95", "93", "11", "02", "0900", "27", " 27 ",
                                    "institutional", "audio-only", "yes", "9" * 5000])
    if kind == 9:
        import decimal

        return decimal.Decimal(fdp.ConsumeIntInRange(-10**6, 10**6)).scaleb(fdp.ConsumeIntInRange(-40, 40))
    return fdp.ConsumeUnicode(1) * fdp.ConsumeIntInRange(0, 200_000)


def _record(fdp: Any) -> dict[Any, Any]:
    record: dict[Any, Any] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        key = fdp.PickValueInList(list(FIELD_NAMES)) if fdp.ConsumeIntInRange(0, 7) else fdp.ConsumeUnicode(4)
        record[key] = _value(fdp)
    return record


def child(target: str, libfuzzer_args: list[str]) -> None:
    """Run one target under atheris (this process only; libFuzzer ends it)."""
    import atheris

    with atheris.instrument_imports(include=["cmap_policy"]):
        import cmap_policy.engines.checks
        import cmap_policy.engines.files
        import cmap_policy.lines
        import cmap_policy.load
        import cmap_policy.x12  # noqa: F401
    one = _targets()[target]
    atheris.Setup([sys.argv[0], *libfuzzer_args], one)
    atheris.Fuzz()


# --- the runner -------------------------------------------------------------------------------------------------------

@dataclass
class Run:
    target: str
    seconds: float = 0.0
    executions: int = 0
    crashes: dict[str, str] = field(default_factory=dict)  # signature -> the saved input
    corpus_files: int = 0
    corpus_bytes: int = 0

    def row(self) -> str:
        rate = f"{self.executions / self.seconds:,.0f}" if self.seconds else "-"
        return (f"| {self.target} | {self.seconds / 60:.1f} | {self.executions:,} | {rate} | {len(self.crashes)} | "
                f"{self.corpus_files:,} | {self.corpus_bytes:,} |")


_SIGNATURE = re.compile(r"^(?:=== Uncaught Python exception: ===\n)?((?:\w+\.)*\w+(?:Error|Exception|Exit)\b.*)$",
                        re.M)


def _signature(output: str) -> str:
    """What crashed, for telling crashes apart: the exception and the last frame of cmap_policy it passed."""
    frames = re.findall(r'File "([^"]*cmap_policy[^"]*)", line (\d+)', output)
    where = f"{Path(frames[-1][0]).name}:{frames[-1][1]}" if frames else "?"
    if "ERROR: libFuzzer: timeout" in output:
        return f"timeout at {where}"
    if "out-of-memory" in output:
        return f"out of memory at {where}"
    m = _SIGNATURE.search(output)
    return f"{m.group(1)[:120] if m else 'crash'} at {where}"


def fuzz(target: str, seconds: float, work: Path, stream: Any = None) -> Run:
    """Fuzz ``target`` for ``seconds``, carrying on after each crash; the corpus grows in ``work/target``."""
    corpus = work / target / "corpus"
    crashes = work / target / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    if not corpus.exists():
        corpus.mkdir(parents=True)
        for seeds in [CORPUS / target, *EXTRA_SEEDS.get(target, [])]:
            for seed in sorted(p for p in seeds.iterdir() if _seed(p)) if seeds.is_dir() else []:
                shutil.copy(seed, corpus / seed.name)
    run = Run(target)
    repeats: dict[str, int] = {}
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    while (left := seconds - (time.monotonic() - started)) > 1:
        args = [f"-max_total_time={int(left)}", f"-timeout={PER_INPUT_SECONDS}", "-rss_limit_mb=3072",
                "-print_final_stats=1", f"-artifact_prefix={crashes}/", str(corpus)]
        if target in MAX_LEN:
            args.insert(0, f"-max_len={MAX_LEN[target]}")
        before = set(crashes.iterdir())
        proc = subprocess.run([sys.executable, "-m", "tests.fuzz", "--child", target, "--", *args], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", check=False)
        output = proc.stdout
        run.executions += sum(int(n) for n in re.findall(r"stat::number_of_executed_units: (\d+)", output))
        saved = sorted(set(crashes.iterdir()) - before)
        if proc.returncode != 0 or saved:
            signature = _signature(output)
            seen = signature in run.crashes
            run.crashes.setdefault(signature, str(saved[0]) if saved else "(no input saved)")
            if stream is not None and not seen:
                tail = output[output.find("=== Uncaught Python exception"):][-4000:]
                print(f"{target}: crash: {signature}\n{tail}", file=stream)
            if not saved or (seen and repeats.setdefault(signature, 0) >= 2):
                break  # libFuzzer could not start, or finds this crash again at once: carrying on finds nothing
            repeats[signature] = repeats.get(signature, 0) + 1
    run.seconds = time.monotonic() - started
    files = [p for p in corpus.iterdir() if p.is_file()]
    run.corpus_files, run.corpus_bytes = len(files), sum(p.stat().st_size for p in files)
    return run


def _seed(path: Path) -> bool:
    """A file to seed from (tests/data holds licences and notes beside the samples)."""
    return path.is_file() and not path.name.startswith(("LICENSE", "SOURCES", "README"))


HEADER = ("| target | minutes | executions | per second | crashes | corpus files | corpus bytes |\n"
          "|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", choices=[*TARGETS, "all"], metavar="TARGET",
                        help=f"{', '.join(TARGETS)}, or all")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, help="how long to fuzz each target (default 10)")
    length.add_argument("--minutes", type=float, help="how long to fuzz each target, in minutes")
    parser.add_argument("--work", type=Path, help="where the corpora grow and crashes are kept (default: a "
                                                  "temporary folder, removed at the end)")
    parser.add_argument("--reproduce", type=Path, metavar="FILE",
                        help="run the one target given on this input, without atheris, and show what it raises")
    args = parser.parse_args(argv)
    if args.reproduce is not None:
        if len(args.targets) != 1 or args.targets[0] == "all":
            parser.error("--reproduce takes one target")
        _targets()[args.targets[0]](args.reproduce.read_bytes())  # an exception here is the crash, shown whole
        print(f"{args.targets[0]}: no crash on {args.reproduce}")
        return 0
    seconds = args.minutes * 60 if args.minutes is not None else (args.seconds or 10.0)
    targets = list(TARGETS) if "all" in args.targets else list(dict.fromkeys(args.targets))
    work = args.work or Path(tempfile.mkdtemp(prefix="cmap-fuzz-"))
    runs = []
    try:
        print(HEADER, flush=True)
        for target in targets:
            runs.append(fuzz(target, seconds, work, stream=sys.stderr))
            print(runs[-1].row(), flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    for run in runs:
        for signature, saved in run.crashes.items():
            print(f"crash in {run.target}: {signature} (input: {saved})")
    return 1 if any(run.crashes for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
