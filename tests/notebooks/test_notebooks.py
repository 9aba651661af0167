"""Every notebook in notebooks/ runs top to bottom, is committed without outputs and defines nothing.

Each notebook is executed with nbclient on the ``python3`` kernel (jupyter_client
starts it with this interpreter, i.e. the venv's) in a temporary working
directory, with TMPDIR pointing there too, so the small county, the MLflow
store and the reports it writes all land under pytest's tmp_path.

As papermill does, a cell of overrides is injected after the cell tagged
``parameters``: the tests run each notebook on a smaller county than a reader
gets (the code path is the same, the figures are not looked at here).
"""
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
TIMEOUT = 300  # per cell, seconds
DEFINITION = re.compile(r"^\s*(async\s+def|def|class)\s", re.MULTILINE)
#: smaller than the notebooks' own values; applied to the names a notebook's parameters cell defines
TEST_PARAMETERS = {"CLIENTS": "1_200", "TRUTH_REPS": "4", "BOOTSTRAP": "5"}


def _ids(paths):
    return [p.stem for p in paths]


def _with_test_parameters(nb):
    """Insert the overrides of TEST_PARAMETERS after the cell tagged ``parameters`` (if there is one)."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            defined = set(re.findall(r"^([A-Z_][A-Z0-9_]*)\s*=", cell.source, re.MULTILINE))
            lines = [f"{name} = {value}" for name, value in TEST_PARAMETERS.items() if name in defined]
            if lines:
                nb.cells.insert(i + 1, nbformat.v4.new_code_cell("\n".join(lines)))
            return nb
    return nb


def test_test_parameters_replace_only_what_the_parameters_cell_defines():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("CLIENTS = 3_000\nSEED = 7"), nbformat.v4.new_code_cell("x = 1")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    out = _with_test_parameters(nb)
    assert [c.source for c in out.cells] == ["CLIENTS = 3_000\nSEED = 7", "CLIENTS = 1_200", "x = 1"]


def test_the_notebooks_are_numbered_in_order():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert len(numbers) >= 5 and numbers == list(range(1, len(numbers) + 1)), [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_without_outputs_and_without_definitions(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook with no code"
    for i, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {i} has outputs; clear them before committing"
        assert cell.execution_count is None, f"code cell {i} has an execution count; clear outputs"
        assert not DEFINITION.search(cell.source), f"code cell {i} defines a function or class; put it in the library"


@pytest.mark.e2e
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_without_error(path, tmp_path):
    from nbclient import NotebookClient

    nb = _with_test_parameters(nbformat.read(path, as_version=4))
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))  # which interpreter ran it
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    client = NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute(env=env)  # raises CellExecutionError naming the failing cell
    seconds = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code")
    kernel_python = nb.cells[-1].outputs[0]["text"].strip()
    assert Path(kernel_python).resolve() == Path(sys.executable).resolve(), "the kernel is not this venv's python"
    print(f"{path.name}: {seconds:.1f} s")
