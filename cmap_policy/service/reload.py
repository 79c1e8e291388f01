"""Hot reload: watch the policy folder and swap in a changed tree once it loads and checks.

``watchfiles`` (inotify on Linux, with a debounce so an editor's or ``git checkout``'s burst of writes is
one change) reports changes to JSON files; the tree is loaded and checked in a worker thread, so requests
go on being answered by the old policy meanwhile, and then swapped in by ``PolicyHolder.install``. A tree
that fails keeps the old one serving; the next change is tried again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from watchfiles import Change, awatch

from .state import Failure, PolicyHolder, Serving, load

DEBOUNCE_MS = 400


def _json_files(change: Change, path: str) -> bool:
    return path.endswith(".json")


async def reload_once(holder: PolicyHolder, on_result: Callable[[Serving | Failure, bool], None]) -> None:
    """Load the tree off the event loop and install it; ``on_result`` hears how it went and if it was a reload."""
    result = await asyncio.to_thread(load, holder.root)
    on_result(result, holder.install(result))


async def watch(holder: PolicyHolder, root: Path, stop: asyncio.Event,
                on_result: Callable[[Serving | Failure, bool], None]) -> None:
    """Reload on every change under ``root`` until ``stop`` is set."""
    async for _changes in awatch(root, watch_filter=_json_files, debounce=DEBOUNCE_MS, stop_event=stop):
        await reload_once(holder, on_result)
