"""Every notebook in notebooks/ runs from top to bottom in a real Jupyter kernel (nbclient with
ipykernel's python3 kernel), against this checkout's medsynth, and is stored without outputs."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300            # seconds per cell; the whole quickstart is about 1 min of CPU (3 min on a shared machine)

# appended to the executed copy only: which medsynth did the kernel import?
WHICH_MEDSYNTH = "import medsynth, os; print(os.path.realpath(medsynth.__file__))"


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has stored outputs; clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count; clear outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    notebook.cells.append(nbformat.v4.new_code_cell(WHICH_MEDSYNTH))
    # the kernel inherits PYTHONPATH, so it imports the medsynth under test; MPLBACKEND keeps plots off-screen
    env = {**os.environ, "MPLBACKEND": "Agg"}
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)     # raises CellExecutionError, naming the cell, if any cell fails

    executed = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in executed), "a cell did not run"
    assert len(executed) == code_cells + 1
    printed = "".join(out.get("text", "") for out in executed[-1].outputs if out.output_type == "stream").strip()
    assert Path(printed).parent == (ROOT / "python" / "medsynth").resolve(), \
        f"the kernel imported medsynth from {printed}, not from this checkout"
