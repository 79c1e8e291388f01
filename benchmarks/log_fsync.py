"""The decision log's writer alone, per `--log-fsync` mode: records/s and the wait for each record.

    python benchmarks/log_fsync.py                 # 16 producers, 5 seconds a mode
    python benchmarks/log_fsync.py --seconds 2

`benchmarks/serve_load.py --log-fsync MODE` measures the whole service; on a busy machine its figures are
mostly the client and the other processes. This measures what the mode itself costs: 16 threads (the load
test's 16 connections) each queue one decision record at a time, as a request does, and, with `always`, wait
until the writer has synced it, as the request does before its answer is sent. It prints, per mode, the
records written a second and the p50 and p99 time from queueing a record to being free to answer, with the
load average; the log is written in a temporary folder of the file system `TMPDIR` names.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from cmap_policy.load import load_policy  # noqa: E402
from cmap_policy.service.decisions import Decider  # noqa: E402
from cmap_policy.service.log import FSYNC_MODES, DecisionLog  # noqa: E402


def told(event: threading.Event) -> Callable[[str | None], None]:
    """What the writer calls once a record is synced (a request's wait, as the service's ``Service.log``)."""
    return lambda error: event.set()


def run(mode: str, seconds: float, producers: int, folder: Path) -> dict[str, float]:
    answer = Decider(load_policy()).answer({"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]}, 1, None)
    log = DecisionLog(folder / f"{mode}.jsonl", fsync=mode, max_bytes=1 << 40)
    waits: list[float] = []
    until = time.perf_counter() + seconds

    def produce() -> None:
        mine: list[float] = []
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            if mode == "always":
                synced = threading.Event()
                log.record_many([answer], "/v1/decide", None, told(synced))
                synced.wait()
            else:
                log.record(answer, "/v1/decide")
            mine.append(time.perf_counter() - t0)
        waits.extend(mine)

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()  # what never and interval leave queued is written (and synced) here, and counted
    elapsed = time.perf_counter() - t0
    waits.sort()
    return {"records_per_s": log.writer.written / elapsed, "p50_ms": waits[len(waits) // 2] * 1000,
            "p99_ms": waits[int(len(waits) * 0.99)] * 1000, "syncs": log.writer.syncs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--producers", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for mode in FSYNC_MODES:
            before = os.getloadavg()
            r = run(mode, args.seconds, args.producers, Path(tmp))
            print(f"--log-fsync {mode:<8}  {r['records_per_s']:>9,.0f} records/s  wait p50 {r['p50_ms']:.3f} ms, "
                  f"p99 {r['p99_ms']:.3f} ms  ({r['syncs']:,} syncs; load average {before[0]:.2f} before, "
                  f"{os.getloadavg()[0]:.2f} after)")


if __name__ == "__main__":
    main()
