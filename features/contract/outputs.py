"""The one rule for everything sote writes: never delete or replace what sote did not write.

Every folder sote writes into gets a small record, ``.sote-manifest.json``,
listing the files and folders sote wrote there (``features.contract.io``'s
atomic writers keep it). From that record:

- an output **file** may replace an existing file only if the record of its
  folder lists it (sote wrote it before); anything else is refused;
- an output **folder** that exists and holds anything sote did not write is
  refused, unless ``overwrite`` is given; even then only sote's own entries are
  replaced and everything else is left as it was;
- an output or quarantine folder (or file) equal to, inside or containing an
  input folder or file is refused;
- stores that accumulate (the MLflow store, databases) must lie outside every
  output folder.

Refusals raise :class:`OutputRefused` (a ``ValueError``) naming the option,
the path and what is in the way.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

MANIFEST = ".sote-manifest.json"
#: Temporaries of sote's own naming: ``.<name>.sote-<pid>-<token>.tmp`` (or ``.old``).
TEMP_PATTERN = re.compile(r"^\..+\.sote-(\d+)-[0-9a-f]{8}\.(?:tmp|old)$")
_SHOWN = 5


class OutputRefused(ValueError):
    """An output path sote will not write to: names the option, the path and the reason."""


def temp_name(name: str, kind: str = "tmp") -> str:
    """A temporary name beside ``name`` that :data:`TEMP_PATTERN` recognises as sote's."""
    return f".{name}.sote-{os.getpid()}-{secrets.token_hex(4)}.{kind}"


def is_temp(name: str) -> bool:
    """True for a name of sote's own temporaries."""
    return TEMP_PATTERN.match(name) is not None


def owned(folder: str | Path) -> set[str]:
    """Names of the entries of ``folder`` that sote wrote (from its manifest); empty if none."""
    path = Path(folder) / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    files = raw.get("files") if isinstance(raw, dict) else None
    return {str(f) for f in files} if isinstance(files, list) else set()


def _write_manifest(folder: Path, names: set[str]) -> None:
    tmp = folder / temp_name(MANIFEST)
    try:
        tmp.write_text(json.dumps({"written_by": "sote", "files": sorted(names)}, indent=1) + "\n",
                       encoding="utf-8")
        os.replace(tmp, folder / MANIFEST)
    finally:
        if tmp.exists():
            tmp.unlink()


def record(folder: str | Path, names: Iterable[str], *, exact: bool = False) -> None:
    """Add ``names`` to the manifest of ``folder`` (or set it to exactly ``names``)."""
    folder = Path(folder)
    new = set(names) if exact else owned(folder) | set(names)
    _write_manifest(folder, new - {MANIFEST})


def forget(folder: str | Path, names: Iterable[str]) -> None:
    """Remove ``names`` from the manifest of ``folder``."""
    folder = Path(folder)
    _write_manifest(folder, owned(folder) - set(names))


def foreign_entries(folder: str | Path) -> list[str]:
    """Entries of an existing ``folder`` sote did not write (not in its manifest, not sote temporaries)."""
    folder = Path(folder)
    mine = owned(folder) | {MANIFEST}
    return sorted(p.name for p in folder.iterdir() if p.name not in mine and not is_temp(p.name))


def make_dirs(folder: str | Path) -> Path:
    """Create ``folder`` and any missing parents, recording each folder sote created in its parent's manifest."""
    folder = Path(folder)
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir()
        except FileExistsError:
            continue
        record(p.parent, [p.name])
    return folder


def _resolved(path: str | Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_not_input(path: str | Path, inputs: Iterable[str | Path | None], option: str = "--out") -> None:
    """Refuse an output equal to, inside or containing an input.

    Raises
    ------
    OutputRefused
        If ``path`` and an input folder or file overlap.
    """
    out = _resolved(path)
    for given in inputs:
        if given is None:
            continue
        src = _resolved(given)
        if out == src:
            raise OutputRefused(f"{option} {path} is the input {given} itself; choose another path")
        if _inside(out, src):
            raise OutputRefused(f"{option} {path} is inside the input {given}; choose a path outside it")
        if _inside(src, out):
            raise OutputRefused(f"{option} {path} contains the input {given}; choose a path that does not")


def check_output_file(path: str | Path, option: str = "--out", *, inputs: Iterable[str | Path | None] = ()
                      ) -> None:
    """Refuse an output file that overlaps an input or would replace a file sote did not write.

    Raises
    ------
    OutputRefused
        If ``path`` is an input (or inside one), is a folder, or exists
        without being recorded as sote's in its folder's manifest.
    """
    path = Path(path)
    check_not_input(path, inputs, option)
    if path.is_dir():
        raise OutputRefused(f"{option} {path} is a folder; give a file name")
    if path.exists() and path.name not in owned(path.parent):
        raise OutputRefused(f"{option} {path} exists and was not written by sote (it is not listed in "
                            f"{path.parent / MANIFEST}); sote never replaces other files: move it or choose "
                            "another name")


def check_output_dir(path: str | Path, option: str = "--out", *, overwrite: bool = False,
                     inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse an output folder that overlaps an input or holds what sote did not write (unless ``overwrite``).

    With ``overwrite`` a folder holding other files is accepted: sote then
    writes only its own entries and leaves the rest alone (a name clash with
    such a file is still refused when writing).

    Raises
    ------
    OutputRefused
        If ``path`` overlaps an input, is a file, or holds entries sote did not write and ``overwrite`` is False.
    """
    path = Path(path)
    check_not_input(path, inputs, option)
    if not path.exists():
        return
    if not path.is_dir():
        raise OutputRefused(f"{option} {path} is a file, not a folder")
    foreign = foreign_entries(path)
    if foreign and not overwrite:
        shown = ", ".join(foreign[:_SHOWN]) + (f", … ({len(foreign)} in all)" if len(foreign) > _SHOWN else "")
        raise OutputRefused(f"{option} {path} already holds files sote did not write ({shown}); choose a new or "
                            "empty folder, or pass --overwrite to write sote's files beside them (sote then "
                            "replaces only its own files)")


def store_path(uri: str | None) -> Path | None:
    """The local path of an MLflow store URI (``sqlite:///x.db``, ``file:x``, a plain path), or None if remote."""
    if uri is None:
        return Path("mlruns")
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if "://" in uri or uri.startswith(("databricks", "http")):
        return None
    return Path(uri)


def check_store_outside(store: str | Path | None, out: str | Path, option: str = "--out",
                        store_option: str = "--tracking-uri") -> None:
    """Refuse an output folder that contains a store that accumulates (an MLflow store, a database).

    Raises
    ------
    OutputRefused
        If the local store path lies inside (or is) ``out``.
    """
    path = store_path(str(store)) if store is not None else store_path(None)
    if path is None:
        return
    if _inside(_resolved(path), _resolved(out)):
        raise OutputRefused(f"{option} {out} would contain the store {path} ({store_option}); stores that "
                            "accumulate live outside every output folder: choose another --out or store")
