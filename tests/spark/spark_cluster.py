"""A real standalone Spark cluster on 127.0.0.1 for the tests: one master and two workers, torn down after.

The master and the workers are the ``org.apache.spark.deploy`` classes of the
pyspark install, started with its ``bin/spark-class`` (Java from ``$JAVA_HOME``
or the PATH) on free ports, each with its own log and work folder. The driver
session connects with ``spark://127.0.0.1:<port>``, so tasks run in the
workers' executor JVMs and Python workers: shuffles and serialisation are real.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def what_is_missing() -> str | None:
    """Why a cluster cannot start here (no Java, no pyspark), or None."""
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else shutil.which("java")
    if java is None or not Path(java).exists():
        return "no java on the PATH or in $JAVA_HOME (Java 17: apt-get install openjdk-17-jre-headless)"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install -e '.[spark]')"
    return None


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _wait(check, what: str, timeout: float, procs, logs) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs):
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: a Spark daemon exited with {proc.returncode}; its log "
                                   f"{log}:\n{Path(log).read_text(errors='replace')[-3000:]}")
        if check():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not ready within {timeout:.0f} s; logs in {Path(logs[0]).parent}")


def _alive_workers(ui: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as response:
            state = json.load(response)
    except (OSError, ValueError):
        return 0
    return sum(1 for w in state.get("workers", ()) if w.get("state") == "ALIVE")


@contextlib.contextmanager
def standalone_cluster(folder: Path, workers: int = 2, worker_memory: str = "1g", timeout: float = 120.0):
    """Start a master and ``workers`` one-core workers on 127.0.0.1; yield the master URL.

    Every daemon is stopped (SIGTERM, then SIGKILL after 10 s) when the block ends.
    """
    home = _spark_home()
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_MEMORY": "256m",
           "PYSPARK_PYTHON": sys.executable, "SPARK_NO_DAEMONIZE": "1"}
    port, ui = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    logs: list[Path] = []

    def start(name: str, *args: str) -> None:
        log = folder / f"{name}.log"
        logs.append(log)
        with log.open("wb") as out:
            procs.append(subprocess.Popen([str(home / "bin" / "spark-class"), *args], env=env, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True))

    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
              "--webui-port", str(ui))
        _wait(lambda: _alive_workers(ui) == 0 and _listening(port), "Spark master", timeout, procs, logs)
        for i in range(workers):
            work = folder / f"worker{i}"
            work.mkdir(exist_ok=True)
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                  "--webui-port", str(free_port()), "--cores", "1", "--memory", worker_memory,
                  "--work-dir", str(work), master)
        _wait(lambda: _alive_workers(ui) == workers, f"{workers} Spark workers", timeout, procs, logs)
        yield master
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
