"""The Spark engine: the same compiled feature SQL run by Spark SQL, results written by Spark.

>>> engine = SparkEngine(master="spark://head:7077")                 # doctest: +SKIP
>>> with ClientHistories("s3a://county/validated", engine=engine, validate=False) as h:  # doctest: +SKIP
...     write_features(h, "2024-01-01", "s3a://county/features_2024-01-01")

Tables are registered from Parquet files or folders (``spark.read.parquet``;
small pandas frames such as the unit-cost table are sent to the cluster), the
DuckDB-dialect SQL that :mod:`features.histories.sql` emits is transpiled by
sqlglot to Spark SQL (an unsupported construct raises instead of changing
meaning), and :meth:`SparkEngine.write` has the executors write the result to a
Parquet folder: nothing county-sized passes through the driver. pyspark is an
optional dependency (``pip install -e '.[spark]'``); importing this module
does not need it, creating an engine does. See docs/spark.md.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from features.contract.io import atomic_dir
from features.histories.engine import SUCCESS

#: Spark settings every session made here gets (what the parity with DuckDB relies on).
SESSION_CONFIG = {
    "spark.sql.session.timeZone": "UTC",             # dates never shift with the machine's time zone
    "spark.sql.ansi.enabled": "false",               # x / 0 is NULL, as in DuckDB
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",  # "091" stays text
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


class SparkUnavailable(RuntimeError):
    """pyspark is not installed or Spark cannot start (no Java); the message says what to install."""


def _pyspark():
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise SparkUnavailable("the Spark engine needs pyspark: pip install -e '.[spark]' "
                               f"(and Java 17): {err}") from err
    return SparkSession


def spark_session(master: str | None = None, *, app_name: str = "sote", driver_memory: str = "1g",
                  executor_memory: str | None = None, shuffle_partitions: int | None = None,
                  config: Mapping[str, str] | None = None):
    """A SparkSession with :data:`SESSION_CONFIG`; an existing session of this process is reused.

    Parameters
    ----------
    master
        ``spark://host:7077``, ``yarn``, ``k8s://…``, ``local[4]``; None: ``local[*]``
        (or what ``spark-submit --master`` set).
    driver_memory, executor_memory
        Java heap of the driver and of each executor (only when this call starts the JVM).
    shuffle_partitions
        ``spark.sql.shuffle.partitions`` (Spark's default of 200 suits large data;
        small counties run faster with a few).
    config
        Further Spark settings, applied last.

    Raises
    ------
    SparkUnavailable
        Without pyspark, or when the JVM cannot start (no Java).
    """
    SparkSession = _pyspark()
    # the Python workers run this interpreter (pandas, pyarrow, LightGBM as the driver has them)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    elif "spark.master" not in (config or {}) and not os.environ.get("PYSPARK_SUBMIT_ARGS"):
        builder = builder.master("local[*]")
    settings = {**SESSION_CONFIG, "spark.driver.memory": driver_memory}
    if executor_memory:
        settings["spark.executor.memory"] = executor_memory
    if shuffle_partitions:
        settings["spark.sql.shuffle.partitions"] = str(int(shuffle_partitions))
    settings.update(config or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as err:  # noqa: BLE001 - py4j raises several types when the JVM does not start
        raise SparkUnavailable(f"Spark did not start (is Java 17 installed?): {str(err).splitlines()[0]}") from err
    for key, value in SESSION_CONFIG.items():  # a reused session gets the settings the SQL relies on
        if not key.startswith("spark.ui"):
            session.conf.set(key, value)
    session.sparkContext.setLogLevel("ERROR")
    return session


def to_spark_sql(sql: str) -> str:
    """``sql`` (DuckDB dialect) as Spark SQL; a construct sqlglot cannot carry over raises.

    Raises
    ------
    sqlglot.errors.UnsupportedError
        Rather than a silently different query.
    """
    import sqlglot

    statements = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    if len(statements) != 1:
        raise ValueError(f"one SQL statement expected, got {len(statements)}")
    return statements[0]


def is_remote(path: str | Path) -> bool:
    """True for a URI Spark writes itself (``s3a://``, ``hdfs://``, ``abfss://``, ``dbfs:/``), not a local path."""
    text = str(path)
    return "://" in text or text.startswith("dbfs:")


def _spark_schema(frame: pd.DataFrame):
    """Spark types of a pandas frame's columns (an empty frame has no values to infer them from)."""
    import pyarrow as pa
    from pyspark.sql import types as T

    fields = []
    for field in pa.Schema.from_pandas(frame, preserve_index=False):
        t = field.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
            spark = T.StringType()
        elif pa.types.is_boolean(t):
            spark = T.BooleanType()
        elif pa.types.is_integer(t):
            spark = T.LongType()
        elif pa.types.is_floating(t):
            spark = T.DoubleType()
        elif pa.types.is_timestamp(t):
            spark = T.TimestampNTZType()
        elif pa.types.is_date(t):
            spark = T.DateType()
        else:
            raise TypeError(f"column {field.name!r}: no Spark type for {t}")
        fields.append(T.StructField(field.name, spark, True))
    return T.StructType(fields)


class SparkEngine:
    """Spark SQL behind the :class:`~features.histories.engine.Engine` interface.

    Parameters
    ----------
    spark
        A SparkSession (e.g. Databricks' ``spark``); None starts one with :func:`spark_session`.
    master
        Master URL for a session started here (None: local).
    **session
        Further :func:`spark_session` arguments for a session started here.
    """

    dialect = "spark"

    def __init__(self, spark=None, master: str | None = None, **session):
        # a session this process already had (a notebook's, a test's) is reused and not ours to stop
        self._own = spark is None and _pyspark().getActiveSession() is None
        self.spark = spark if spark is not None else spark_session(master, **session)

    def register(self, name: str, data: pd.DataFrame | str | Path) -> None:
        """Expose a Parquet file or folder (read by the executors) or a small pandas frame as ``name``."""
        if isinstance(data, pd.DataFrame):
            frame = data.astype({c: "float64" for c in data.columns if str(data[c].dtype) == "Float64"})
            df = self.spark.createDataFrame(frame, schema=_spark_schema(frame))
        else:
            if not is_remote(data):
                path = Path(data)
                if not path.exists():
                    raise FileNotFoundError(f"table {name!r}: {path} not found")
                if path.is_file() and path.suffix != ".parquet":
                    raise ValueError(f"{path}: the Spark engine reads Parquet files or folders")
            df = self.spark.read.parquet(str(data))
        df.createOrReplaceTempView(name)

    def columns(self, name: str) -> list[str]:
        return list(self.spark.table(name).columns)

    def frame(self, sql: str):
        """The Spark DataFrame of ``sql`` (DuckDB dialect), not yet computed."""
        return self.spark.sql(to_spark_sql(sql))

    def query(self, sql: str) -> pd.DataFrame:
        """Run ``sql`` and bring the result to the driver: for small results (counts, checks) only."""
        return self.frame(sql).toPandas()

    def write(self, sql: str, path: str | Path, partition_by: Sequence[str] | None = None) -> None:
        """Have the executors write the result of ``sql`` to a Parquet folder at ``path``.

        A local ``path`` is written into a temporary folder beside it and moved
        into place when Spark has committed (:func:`features.contract.io.atomic_dir`);
        a remote one (:func:`is_remote`) is written by Spark's own commit protocol,
        complete when its ``_SUCCESS`` marker is there. A ``.parquet`` name is a folder too.
        """
        write_frame(self.frame(sql), path, partition_by)

    def close(self) -> None:
        """Stop the SparkSession if this engine started it (not one it was given or found running)."""
        if self._own:
            self.spark.stop()


def check_remote_target(spark, path: str) -> None:
    """Refuse a remote ``path`` that exists and is not a completed Parquet output (no ``_SUCCESS`` marker).

    Spark's overwrite mode deletes whatever is at the path; sote replaces only an
    output folder a Spark job completed (sote's own earlier result, as a rerun
    does), never a folder of other files.

    Raises
    ------
    features.contract.outputs.OutputRefused
        Naming the path and what to do.
    """
    from features.contract.outputs import OutputRefused

    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(path)
    fs = target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(target):
        return
    if not fs.getFileStatus(target).isDirectory():
        raise OutputRefused(f"output folder {path}: a file is there; sote does not overwrite it")
    if not fs.exists(jvm.org.apache.hadoop.fs.Path(path.rstrip("/") + "/" + SUCCESS)):
        raise OutputRefused(f"output folder {path}: exists and is not a completed Parquet output (no {SUCCESS} "
                            "marker); sote replaces only its own earlier output: choose another path or remove it")


def write_frame(df, path: str | Path, partition_by: Sequence[str] | None = None) -> None:
    """Write a Spark DataFrame to a Parquet folder at ``path``, atomically (see :meth:`SparkEngine.write`).

    A remote path that exists is replaced only when it is a completed output (:func:`check_remote_target`).
    """
    writer_of = (lambda target: df.write.mode("overwrite").option("compression", "zstd")
                 .partitionBy(*(partition_by or ())).parquet(target))
    if is_remote(path):
        check_remote_target(df.sparkSession, str(path))
        writer_of(str(path))
        return
    with atomic_dir(Path(path), option="output folder") as tmp:
        writer_of(str(tmp))
        if not (tmp / SUCCESS).is_file():  # Spark writes it on commit unless told not to
            raise RuntimeError(f"Spark did not commit {path} (no {SUCCESS} marker)")
