"""Real servers on loopback for the integration tests and the load benchmark.

A throwaway PostgreSQL cluster (Debian's server binaries, run as the
``postgres`` user when we are root, since ``initdb`` and ``pg_ctl`` refuse to
run as root), a uvicorn server in a background thread, and the system
Chromium's path and launch flags. Nothing here imports ``worklist``.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: Debian's Chromium, launched by path (Playwright cannot download browsers here).
CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a headless Chromium as root on a closed network: no sandbox (root), no GPU, and none of the
#: background connections that this machine's network refuses.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")
#: Where Debian keeps the PostgreSQL server binaries, one folder per major version.
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL server's ``bin`` folder (holding ``initdb``), or None if there is none."""
    found = [Path(p) for p in glob.glob(PG_BIN_GLOB) if (Path(p) / "initdb").exists()]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise RuntimeError("running as root without runuser: cannot start PostgreSQL as the postgres user")
    return ["runuser", "-u", "postgres", "--"]


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


@contextmanager
def postgres_cluster(dbname: str = "sote_test", *, settings: dict[str, str] | None = None,
                     attempts: int = 3) -> Iterator[str]:
    """Run a fresh PostgreSQL cluster on 127.0.0.1 for the duration of the ``with`` block.

    The cluster lives in a new temporary folder (owned by ``postgres`` when we
    are root; its unix socket goes there too), listens on a free port with
    trust authentication for the ``postgres`` superuser, and holds one empty
    database ``dbname``. On exit the server is stopped (fast shutdown) and the
    folder removed.

    Parameters
    ----------
    dbname
        The database created for the caller.
    settings
        Extra server settings (``-c name=value``), e.g. ``{"fsync": "off"}`` for tests.
    attempts
        How many free ports to try if another process takes the chosen port first.

    Yields
    ------
    str
        ``postgresql+psycopg://postgres@127.0.0.1:PORT/dbname``.
    """
    import psycopg

    bindir = pg_bindir()
    if bindir is None:
        raise FileNotFoundError(f"no PostgreSQL server: no initdb in {PG_BIN_GLOB}")
    as_pg = _as_postgres()
    root = Path(tempfile.mkdtemp(prefix="sote-pg-"))
    data, log = root / "data", root / "server.log"
    try:
        if as_pg:
            shutil.chown(root, "postgres", "postgres")
        _run(as_pg + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync"])
        options = " ".join(f"-c {k}={v}" for k, v in (settings or {}).items())
        for attempt in range(attempts):
            port = free_port()
            try:
                _run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                              "-o", f"-h 127.0.0.1 -p {port} -k {root} {options}", "start"])
                break
            except RuntimeError:
                if attempt == attempts - 1:
                    raise RuntimeError(f"PostgreSQL did not start: {log.read_text(errors='replace')[-2000:]}")
        try:
            with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                                 autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{dbname}"')
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{dbname}"
        finally:
            _run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def uvicorn_thread(app, host: str = "127.0.0.1", timeout: float = 30.0) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn in a background thread on a free port of ``host``.

    Yields
    ------
    str
        The base URL, e.g. ``http://127.0.0.1:54321``.
    """
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
