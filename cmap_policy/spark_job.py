"""``cmap-policy eval --engine spark`` as a file for ``spark-submit`` (which runs a .py file, not a module).

    spark-submit --master yarn "$(python -c 'import cmap_policy.spark_job as j; print(j.__file__)')" \\
        hdfs:///claims/ -o hdfs:///decisions/ [--release ID] [--policy DIR]

The arguments are those of ``cmap-policy eval`` after ``--engine spark``; the
master and the cluster come from spark-submit. The executors' Python needs the
package too: docs/spark.md ships it as a packed environment (``--archives``),
the way tests/test_spark_cluster.py submits this file to a standalone cluster.
"""

import sys

from cmap_policy.cli import main

if __name__ == "__main__":
    main(["eval", "--engine", "spark", *sys.argv[1:]], prog_name="cmap-policy")
