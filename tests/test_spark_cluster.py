"""The Spark engine on a real standalone cluster, submitted as docs/spark.md tells users to submit it.

A master and two one-core workers run on 127.0.0.1 (``testing.cluster``, from
pip's pyspark); the job goes to them by the very shell commands of the docs'
recipe (read from docs/spark.md, not restated here): the package built as a
wheel, installed with its ``batch`` extra into a fresh environment, packed with
venv-pack, and shipped to the executors by ``spark-submit --archives``. The
executors' Python is that environment's, built on a base interpreter that does
not have cmap-policy, so a step missing from the docs fails this test -- the
second test shows it does, by leaving the environment out.

One Parquet file of one row group, with malformed lines, goes through both
engines: the decisions, the errors and the summary agree field for field, and
the work was spread over both executors (the output has two non-empty parts).
Slow (a few minutes, most of it building the environment); ``.ci/run`` runs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cmap_policy import load_policy
from cmap_policy.cli import main
from cmap_policy.testing.feed import claims_table

from .spark_support import require_spark

require_spark()

from cmap_policy.testing.cluster import StandaloneCluster, spark_home  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LINES = 60_000
# the recipe's block in docs/spark.md follows this line
LOG_LINE = re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d ")  # Spark's log4j: yy/MM/dd HH:mm:ss LEVEL ...
RECIPE_MARK = "<!-- the commands below are run by tests/test_spark_cluster.py -->"


def recipe() -> str:
    """The shell commands of docs/spark.md's spark-submit recipe, as written there."""
    text = (ROOT / "docs" / "spark.md").read_text(encoding="utf-8")
    assert RECIPE_MARK in text, "docs/spark.md lost its tested recipe"
    block = re.search(r"```sh\n(.*?)```", text[text.index(RECIPE_MARK):], re.S)
    assert block is not None
    return block.group(1)


def _claims(path: Path) -> None:
    """LINES generated lines in one Parquet row group, some malformed on purpose (bad codes and modifiers)."""
    table = claims_table(load_policy(), LINES, np.random.default_rng(24))
    k = np.arange(LINES)
    code = pc.if_else(pa.array(k % 97 == 5), "9079", table["code"])
    code = pc.if_else(pa.array(k % 131 == 7), pa.scalar(None, pa.string()), code)
    mods = pc.if_else(pa.array(k % 113 == 3), "95,XYZ", table["modifiers"])
    table = table.set_column(table.schema.get_field_index("code"), "code", code)
    table = table.set_column(table.schema.get_field_index("modifiers"), "modifiers", mods)
    pq.write_table(table, path, row_group_size=LINES)
    assert pq.read_metadata(path).num_row_groups == 1


def _base_python() -> str:
    """The interpreter this test's environment was made from: it does not have cmap-policy installed."""
    return str(getattr(sys, "_base_executable", sys.executable))


def _env(work: Path, **extra: str) -> dict[str, str]:
    """The submitting user's shell: the test's environment on the PATH first (python3, pip, spark-submit), and
    everything of Spark on the loopback interface."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
            "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1", "HOME": os.environ.get("HOME", str(work)),
            "PIP_CONSTRAINT": str(ROOT / "constraints.txt"), "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the built wheel in dist/ (the recipe's starting point) and the claim lines."""
    folder = tmp_path_factory.mktemp("spark-cluster")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(folder / "dist")],
                   check=True, capture_output=True)
    _claims(folder / "claims.parquet")
    return folder


@pytest.fixture(scope="module")
def cluster(work: Path) -> Iterator[StandaloneCluster]:
    with StandaloneCluster(work / "cluster", workers=2, cores=1, memory="1g") as running:
        yield running


def test_the_documented_submission_matches_the_batch_engine(work: Path, cluster: StandaloneCluster) -> None:
    state = cluster.state()
    assert cluster.alive_workers(state) == 2 and state["cores"] == 2
    env = _env(work, MASTER=cluster.url)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", recipe()], cwd=work, env=env, capture_output=True,
                          text=True, timeout=1800)
    said = done.stdout + done.stderr
    # the environment was packed from a Python without the package: the executors have it only from the archive
    probe = subprocess.run([_base_python(), "-c", "import cmap_policy"], cwd=work / "dist", capture_output=True)
    assert probe.returncode != 0
    batch = CliRunner().invoke(main, ["eval", "--engine", "batch", str(work / "claims.parquet"),
                                      "-o", str(work / "batch.parquet")])
    assert batch.exit_code == 1 and "could not be decided" in batch.output  # some lines are malformed on purpose
    assert done.returncode == 1, said[-4000:]

    out = work / "decisions"
    parts = [p for p in sorted(out.glob("part-*.parquet")) if pq.read_metadata(p).num_rows]
    assert len(parts) == 2, "one executor did all the work"  # one row group, spread over both cores
    got = sorted(pq.read_table(out).to_pylist(), key=lambda r: r["line"])
    want = pq.read_table(work / "batch.parquet").to_pylist()
    assert len(got) == len(want) and got == want
    assert pq.read_schema(parts[0]).names == pq.read_schema(work / "batch.parquet").names

    spark_errors = sorted((json.loads(x) for p in (work / "decisions.errors.jsonl").glob("*.json")
                           for x in p.open(encoding="utf-8")), key=lambda e: e["line"])
    batch_errors = [json.loads(x) for x in (work / "batch.errors.jsonl").open(encoding="utf-8")]
    assert len(batch_errors) > 1000 and spark_errors == batch_errors
    assert len(got) + len(spark_errors) == LINES

    def summary(text: str) -> list[str]:
        """The counts and the last word, without the time and where the errors went (the runs differ there), and
        without the lines Spark's own log writes to the same standard error."""
        return sorted(re.sub(r" \(see [^)]*\)", "", x) for x in text[text.rindex("lines read"):].splitlines()
                      if x.strip() and not x.startswith("elapsed") and not LOG_LINE.match(x))

    # spark-submit passes on what the driver's Python writes, standard error too, as its own standard output
    assert summary(done.stdout) == summary(batch.output)


def test_without_the_packed_environment_the_executors_cannot_decide(work: Path, cluster: StandaloneCluster) -> None:
    """The control: executors on a Python that lacks the package fail the job, with one line that says why."""
    job = subprocess.run([sys.executable, "-c", "import cmap_policy.spark_job as j; print(j.__file__)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    env = _env(work, PYSPARK_PYTHON=_base_python(), PYSPARK_DRIVER_PYTHON=sys.executable)
    done = subprocess.run([str(spark_home() / "bin" / "spark-submit"), "--master", cluster.url,
                           "--conf", "spark.task.maxFailures=1", job, "claims.parquet", "-o", "bare"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=900)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said[-4000:]
    assert re.search(r"^error: Spark could not decide claims\.parquet into bare: .*No module named 'cmap_policy'",
                     said, re.M), said[-4000:]
