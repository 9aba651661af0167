"""Provenance of what sote records: content digests of tables and files, and the software versions.

One digest rule for every table sote records a fingerprint of (training and
validation rows of a model run, the feature table a risk list was scored
from, the feature table a segmentation was fitted on): rows in client order,
values hashed with pandas' stable row hash, SHA-256 of that, first 16 hex
digits. Client identifiers only order the rows (and, when asked, enter the
hash); they are never written out.
"""
from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

#: Hex digits kept of a SHA-256 digest.
DIGEST_LENGTH = 16
#: Distributions whose versions a run or a risk list records.
PACKAGES = ("sote", "lightgbm", "scikit-learn", "pandas", "numpy", "pyarrow", "duckdb", "mlflow", "pandera")


def frame_digest(frame: pd.DataFrame, *, key: str = "client_id", with_key: bool = False) -> str:
    """A short, stable digest of a table's values, independent of its row order.

    Parameters
    ----------
    frame
        The table.
    key
        Identifier column: rows are put in its order first (so the same rows in
        another order give the same digest), then it is left out of the hash.
    with_key
        Hash the identifier column too (a risk list is for these clients, not
        just these values). Identifiers still never leave: only the digest does.

    Returns
    -------
    str
        16 hex digits.
    """
    if key in frame.columns:
        frame = frame.sort_values(key, kind="stable")
        if not with_key:
            frame = frame.drop(columns=[key])
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:DIGEST_LENGTH]


def file_digest(path: str | Path) -> str:
    """Digest of a file's bytes (16 hex digits of SHA-256)."""
    sha = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:DIGEST_LENGTH]


def versions() -> dict[str, str]:
    """Python's and each of :data:`PACKAGES`' installed version (``"not installed"`` when absent)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
