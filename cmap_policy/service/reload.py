"""Hot reload: watch the policy folder (or bundle) and swap in a changed one once it loads and checks.

``watchfiles`` (inotify on Linux, with a debounce so an editor's or ``git checkout``'s burst of writes is
one change) reports changes to JSON files; the tree is loaded and checked in a worker thread, so requests
go on being answered by the old policy meanwhile, and then swapped in by ``PolicyHolder.install``. A tree
that fails keeps the old one serving; the next change is tried again. A bundle is verified before
anything in it is loaded (``state.load``): one that does not verify is such a failure.
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
    result = await asyncio.to_thread(load, holder.root, holder.bundle)
    on_result(result, holder.install(result))


async def watch(holder: PolicyHolder, root: Path, stop: asyncio.Event,
                on_result: Callable[[Serving | Failure, bool], None]) -> None:
    """Reload on every change under ``root`` (or to the bundle file, in its folder) until ``stop`` is set."""
    if holder.bundle is not None:
        bundle = holder.bundle.path.resolve()

        def bundle_file(change: Change, path: str) -> bool:
            return Path(path) == bundle

        changes = awatch(bundle.parent, watch_filter=bundle_file, debounce=DEBOUNCE_MS, stop_event=stop)
    else:
        changes = awatch(root, watch_filter=_json_files, debounce=DEBOUNCE_MS, stop_event=stop)
    async for _changes in changes:
        await reload_once(holder, on_result)
