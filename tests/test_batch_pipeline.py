"""The batch engine's three-stage pipeline: every batch written once, in order, and any stage's error raised
in the caller, with no thread left behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from cmap_policy.engines.batch import pipeline


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("cmap-")}


def test_every_item_is_decided_and_written_once_in_order() -> None:
    written: list[int] = []
    pipeline(iter(range(500)), lambda x: x * 2, written.append)
    assert written == [x * 2 for x in range(500)]
    assert not _threads()


@pytest.mark.parametrize("stage", ["read", "decide", "write"])
def test_an_error_in_any_stage_is_raised_and_stops_the_others(stage: str) -> None:
    written: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1000):
            if stage == "read" and i == 7:
                raise ValueError("read failed at 7")
            yield i

    def decide(x: int) -> int:
        if stage == "decide" and x == 7:
            raise ValueError("decide failed at 7")
        return x

    def write(x: int) -> None:
        if stage == "write" and x == 7:
            raise ValueError("write failed at 7")
        written.append(x)

    with pytest.raises(ValueError, match=f"{stage} failed at 7"):
        pipeline(items(), decide, write)
    assert written == list(range(len(written))) and len(written) <= 7  # in order, and nothing after the error
    assert not _threads()
