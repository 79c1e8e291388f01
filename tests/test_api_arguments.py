"""The API's public functions name a wrong argument, with a ``TypeError`` or ``ValueError``, before any work."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cmap_policy import eval_lines, load_policy, show
from cmap_policy.engines.batch import run
from cmap_policy.errors import PolicyError, UnknownReleaseError
from cmap_policy.formats import FormatError
from cmap_policy.model import Policy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def bundled() -> Policy:
    return load_policy()


def _eval_lines(**kwargs: Any) -> None:
    list(eval_lines(**kwargs))


# (the call, its arguments, the error, the start of its message)
CASES: list[tuple[str, Callable[..., Any], dict[str, Any], type[Exception], str]] = [
    ("eval_lines source int", _eval_lines, {"source": 5}, TypeError, "eval_lines: source must be a path"),
    ("eval_lines source bytes", _eval_lines, {"source": b'{"code": "T1016"}'}, TypeError,
     "eval_lines: source is bytes"),
    ("eval_lines source one record", _eval_lines, {"source": {"code": "T1016"}}, TypeError,
     "eval_lines: source is one record"),
    ("eval_lines format", _eval_lines, {"source": [], "input_format": "xlsx"}, ValueError,
     "eval_lines: input_format is 'xlsx'"),
    ("eval_lines format type", _eval_lines, {"source": [], "input_format": 1}, TypeError,
     "eval_lines: input_format must be one of"),
    ("eval_lines release", _eval_lines, {"source": [], "release": 2023}, TypeError,
     "eval_lines: release must be text or None, not int 2023"),
    ("eval_lines policy", _eval_lines, {"source": [], "policy": 1.5}, TypeError,
     "eval_lines: policy must be a path"),
    ("show code", show, {"code": 97153}, TypeError, "show: code must be text, not int 97153"),
    ("show date text", show, {"code": "97153", "date": "2026-01-05"}, TypeError,
     "show: date must be a datetime.date or None, not str"),
    ("show datetime", show, {"code": "97153", "date": dt.datetime(2026, 1, 5)}, TypeError,
     "show: date must be a datetime.date, not a datetime"),
    ("show release", show, {"code": "97153", "release": ["PB-2020-14"]}, TypeError,
     "show: release must be text or None"),
    ("load_policy path", load_policy, {"path": 3}, TypeError, "load_policy: path must be a path"),
]


@pytest.mark.parametrize(("call", "kwargs", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_wrong_argument_is_named(bundled: Policy, call: Callable[..., Any], kwargs: dict[str, Any],
                                   error: type[Exception], message: str) -> None:
    if call is not load_policy and "policy" not in kwargs:
        kwargs = {**kwargs, "policy": bundled}
    with pytest.raises(error) as caught:
        call(**kwargs)
    assert str(caught.value).startswith(message), str(caught.value)


RUN_CASES: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("progress False", {"progress": False}, TypeError,
     "run: progress must be a Progress (with start(), advance(), close()) or None, not bool False"),
    ("progress object", {"progress": object()}, TypeError, "run: progress must be a Progress (with start()"),
    ("threads text", {"threads": "2"}, TypeError, "run: threads must be a whole number"),
    ("threads zero", {"threads": 0}, ValueError, "run: threads is 0; it must be at least 1"),
    ("input format", {"input_fmt": 5}, TypeError, "run: input_fmt must be text or None, not int 5"),
    ("output format", {"output_fmt": "json"}, ValueError, "run: output_fmt is 'json'"),
    ("stream", {"output": None, "stream": "out.jsonl"}, TypeError, "run: stream must be a text stream"),
    ("errors stream", {"errors_stream": 2}, TypeError, "run: errors_stream must be a text stream"),
    ("policy path", {"policy": "policy"}, TypeError, "run: policy must be a Policy (load_policy()), not str"),
    ("release", {"release": 7}, TypeError, "run: release must be text or None"),
    ("input path", {"input_path": None}, TypeError, "run: input_path must be a path (str or os.PathLike), not None"),
    ("errors path", {"errors_path": 1}, TypeError, "run: errors_path must be a path"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), [c[1:] for c in RUN_CASES], ids=[c[0] for c in RUN_CASES])
def test_the_batch_engines_run_names_a_wrong_argument(tmp_path: Path, bundled: Policy, kwargs: dict[str, Any],
                                                       error: type[Exception], message: str) -> None:
    out = tmp_path / "out.csv"
    args: dict[str, Any] = {"input_path": EXAMPLES / "claims.csv", "output": out, "policy": bundled} | kwargs
    with pytest.raises(error) as caught:
        run(**args)
    assert str(caught.value).startswith(message), str(caught.value)
    assert not out.exists()  # refused before anything was opened for writing


def test_right_arguments_still_run(tmp_path: Path, bundled: Policy) -> None:
    """The checks refuse only what is wrong: each kind each argument may take still works."""
    stream = io.StringIO()
    summary = run(str(EXAMPLES / "claims.csv"), None, policy=bundled, release=None, input_fmt="csv", threads=1,
                  stream=stream, errors_stream=io.StringIO())
    assert summary.read == len(stream.getvalue().splitlines()) + summary.errors > 0
    text = (EXAMPLES / "claims.jsonl").read_bytes()
    assert len(list(eval_lines(io.BytesIO(text), policy=bundled, input_format="jsonl"))) == len(text.splitlines())
    assert show("97153", date=dt.date(2026, 1, 5), policy=str(bundled.root)).in_force is not None
    assert load_policy(Path(bundled.root)).hash == bundled.hash
    with pytest.raises(PolicyError, match="no policy folder here"):  # not the current folder
        load_policy("")
    assert not show("  ", policy=bundled).periods  # a code not on the table is an empty report, not an error
    with pytest.raises(UnknownReleaseError):
        show("97153", release="", policy=bundled)
    with pytest.raises(FormatError, match="unknown input format 'xml'"):  # as the command line says it
        run(EXAMPLES / "claims.csv", tmp_path / "out.csv", policy=bundled, input_fmt="xml")
