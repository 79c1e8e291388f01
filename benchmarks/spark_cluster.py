"""Benchmark: the Spark engine on a standalone cluster against Spark's own floor on the same cluster.

    python benchmarks/spark_cluster.py                          # 1 M, 10 M and 30 M lines; one worker, then two
    python benchmarks/spark_cluster.py --lines 2e5 --workers 2  # a quick check that it runs

For each number of workers (one core, ``--memory`` each, on 127.0.0.1:
``cmap_policy.testing.cluster``) and each size, three jobs read the same Parquet
file (SYNTHETIC policy, 1 M-line row groups, as ``benchmarks/run.py`` makes it)
and write Parquet:

- ``floor``: Spark reads the file and writes the same columns, spread over the
  cores as the engine spreads them (``engines.spark.spread``): no Python at all.
- ``floor_python``: the same, with the rows sent through a Python worker and
  back unchanged (``mapInArrow``, as the engine does): the cost of the transfer.
- ``engine``: ``engines.spark.run``, what ``cmap-policy eval --engine spark`` runs.

Each job runs in a fresh driver process; the time is the job's alone (the
session started and the executors registered first), so the JVM's start is
not in it. The executors run this environment's Python. Prints lines/s, the
CPU-seconds the whole machine spent during the job (from /proc/stat: the JVMs
and the Python workers alike; the cluster is all that runs), and those of the
executors, the Python workers, the driver's JVM and the cluster's daemons, and the engine's
time as a multiple of each floor, with the load average beside each run (the
figures mean little on a busy machine), and writes them as JSON to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import make_data  # noqa: E402

from cmap_policy import load_policy  # noqa: E402
from cmap_policy.testing import synthetic_policy, write_tree  # noqa: E402
from cmap_policy.testing.cluster import StandaloneCluster  # noqa: E402

MODES = ("floor", "floor_python", "engine")

# One job in a fresh driver: argv is mode, master, input, output, policy folder; prints the job's seconds as JSON.
JOB = """
import json, sys, time


def busy():
    # the CPU-seconds every process of the machine has spent (the cluster's JVMs and Python workers included),
    # from /proc/stat; None where there is none
    try:
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / 100  # all but idle and iowait, in USER_HZ (100 a second)


KINDS = (("CoarseGrainedExecutorBackend", "executors"), ("pyspark.daemon", "python workers"),
         ("pyspark.worker", "python workers"), ("SparkSubmit", "driver"), ("pyspark-shell", "driver"),
         ("deploy.worker.Worker", "cluster daemons"), ("deploy.master.Master", "cluster daemons"))


def by_process():
    # the CPU-seconds of the processes alive now, by kind (from /proc; a process that ended is not counted)
    import os
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else ()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().decode("utf-8", "replace")
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = next((k for marker, k in KINDS if marker in command), None)
        if kind is not None:
            out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / 100  # utime + stime
    return out


from cmap_policy import load_policy
from cmap_policy.engines import spark as engine

mode, master, src, out, policy_dir = sys.argv[1:6]
spark = engine.session(master)
policy = load_policy(policy_dir)
spark.range(0, 1000, numPartitions=8).count()  # the executors are registered before the clock starts
processes_at_start = by_process()
started, busy_at_start = time.perf_counter(), busy()
if mode == "engine":
    lines = engine.run(spark, src, out, policy=policy).read
    seconds, busy_at_end = time.perf_counter() - started, busy()
else:
    df = engine.spread(spark, spark.read.parquet(src))
    if mode == "floor_python":
        df = df.mapInArrow(lambda batches: batches, df.schema)
    df.write.mode("overwrite").parquet(out)
    seconds, busy_at_end = time.perf_counter() - started, busy()
    lines = spark.read.parquet(out).count()  # untimed: that the floor wrote every line
cpu = busy_at_end - busy_at_start if busy_at_start is not None and busy_at_end is not None else None
processes = {k: round(v - processes_at_start.get(k, 0.0), 1) for k, v in by_process().items()}
print(json.dumps({"seconds": seconds, "lines": lines, "cpu_seconds": cpu, "cpu_seconds_by_process": processes}))
spark.stop()
"""


def job(mode: str, master: str, src: Path, out: Path, policy_dir: Path) -> dict[str, Any]:
    load = os.getloadavg()[0]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run([sys.executable, "-c", JOB, mode, master, str(src), str(out), str(policy_dir)],
                          capture_output=True, text=True, env=env)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise SystemExit(f"the {mode} job failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "load_average": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", default="1e6,1e7,3e7", help="sizes, comma-separated (default 1e6,1e7,3e7)")
    parser.add_argument("--workers", default="1,2", help="numbers of one-core workers, in turn (default 1,2)")
    parser.add_argument("--memory", default="1g",
                        help="each worker's memory (default 1g; its executor takes Spark's default, 1g)")
    parser.add_argument("--codes", type=int, default=400, help="codes in the synthetic policy (default 400)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the generated data (default: a temp)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.lines.split(",") if s]
    work = args.work or Path(tempfile.mkdtemp(prefix="cmap-spark-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    policy_dir = write_tree(synthetic_policy(args.codes, seed=0), work / "policy")
    policy = load_policy(policy_dir)
    files = {n: make_data(policy, n, work, csv=False)[0] for n in sizes}
    result: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
                              "policy": {"codes": len(policy.codes), "kind": "synthetic", "seed": 0},
                              "memory_per_worker": args.memory, "runs": []}
    print(f"{'workers':>7} {'lines':>12} {'job':<13} {'seconds':>8} {'lines/s':>11} {'CPU-s':>7} {'load':>5}")
    for workers in (int(w) for w in args.workers.split(",") if w):
        with StandaloneCluster(work / f"cluster-{workers}", workers=workers, cores=1,
                               memory=args.memory) as cluster:
            for n, src in files.items():
                run: dict[str, Any] = {"workers": workers, "lines": n}
                for mode in MODES:
                    got = job(mode, cluster.url, src, work / f"out-{mode}", policy_dir)
                    if got["lines"] != n:
                        raise SystemExit(f"the {mode} job wrote {got['lines']:,} lines of {n:,}")
                    run[mode] = got
                    cpu = got.get("cpu_seconds")
                    split = ", ".join(f"{k} {v:.1f}" for k, v in sorted(got["cpu_seconds_by_process"].items()))
                    print(f"{workers:>7} {n:>12,} {mode:<13} {got['seconds']:>8.2f} {n / got['seconds']:>11,.0f} "
                          f"{cpu if cpu is not None else float('nan'):>7.1f} {got['load_average']:>5.2f}  {split}",
                          flush=True)
                run["engine_over_floor"] = run["engine"]["seconds"] / run["floor"]["seconds"]
                run["engine_over_floor_python"] = run["engine"]["seconds"] / run["floor_python"]["seconds"]
                print(f"{'':>7} {'':>12} engine = {run['engine_over_floor']:.2f}x the floor, "
                      f"{run['engine_over_floor_python']:.2f}x the floor through Python", flush=True)
                result["runs"].append(run)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"spark-cluster-{time.strftime('%Y-%m-%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {path.relative_to(HERE.parent) if path.is_relative_to(HERE.parent) else path.name}")


if __name__ == "__main__":
    main()
